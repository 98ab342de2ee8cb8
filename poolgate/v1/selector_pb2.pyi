import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ApiFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    API_FORMAT_UNSPECIFIED: _ClassVar[ApiFormat]
    API_FORMAT_OPENAI: _ClassVar[ApiFormat]
    API_FORMAT_ANTHROPIC: _ClassVar[ApiFormat]

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    OUTCOME_SUCCESS: _ClassVar[Outcome]
    OUTCOME_RATE_LIMITED: _ClassVar[Outcome]
    OUTCOME_AUTH_FAILED: _ClassVar[Outcome]
    OUTCOME_SERVER_ERROR: _ClassVar[Outcome]
    OUTCOME_NETWORK_ERROR: _ClassVar[Outcome]
    OUTCOME_TIMEOUT: _ClassVar[Outcome]
    OUTCOME_CLIENT_ERROR: _ClassVar[Outcome]
    OUTCOME_CANCELLED: _ClassVar[Outcome]

class AccountState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACCOUNT_STATE_UNSPECIFIED: _ClassVar[AccountState]
    ACCOUNT_STATE_HEALTHY: _ClassVar[AccountState]
    ACCOUNT_STATE_COOLING: _ClassVar[AccountState]
    ACCOUNT_STATE_CIRCUIT_OPEN: _ClassVar[AccountState]
    ACCOUNT_STATE_CIRCUIT_HALF_OPEN: _ClassVar[AccountState]
    ACCOUNT_STATE_DISABLED: _ClassVar[AccountState]
    ACCOUNT_STATE_PROBING: _ClassVar[AccountState]

class ProbeReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROBE_REASON_UNSPECIFIED: _ClassVar[ProbeReason]
    PROBE_REASON_NEW: _ClassVar[ProbeReason]
    PROBE_REASON_AFTER_COOLDOWN: _ClassVar[ProbeReason]
    PROBE_REASON_HALF_OPEN: _ClassVar[ProbeReason]
    PROBE_REASON_OPERATOR: _ClassVar[ProbeReason]
    PROBE_REASON_RESTORED: _ClassVar[ProbeReason]
    PROBE_REASON_NEW_CREDENTIAL: _ClassVar[ProbeReason]

class UsageBucket(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    USAGE_BUCKET_UNSPECIFIED: _ClassVar[UsageBucket]
    USAGE_BUCKET_MINUTE: _ClassVar[UsageBucket]
    USAGE_BUCKET_HOUR: _ClassVar[UsageBucket]
    USAGE_BUCKET_DAY: _ClassVar[UsageBucket]
API_FORMAT_UNSPECIFIED: ApiFormat
API_FORMAT_OPENAI: ApiFormat
API_FORMAT_ANTHROPIC: ApiFormat
OUTCOME_UNSPECIFIED: Outcome
OUTCOME_SUCCESS: Outcome
OUTCOME_RATE_LIMITED: Outcome
OUTCOME_AUTH_FAILED: Outcome
OUTCOME_SERVER_ERROR: Outcome
OUTCOME_NETWORK_ERROR: Outcome
OUTCOME_TIMEOUT: Outcome
OUTCOME_CLIENT_ERROR: Outcome
OUTCOME_CANCELLED: Outcome
ACCOUNT_STATE_UNSPECIFIED: AccountState
ACCOUNT_STATE_HEALTHY: AccountState
ACCOUNT_STATE_COOLING: AccountState
ACCOUNT_STATE_CIRCUIT_OPEN: AccountState
ACCOUNT_STATE_CIRCUIT_HALF_OPEN: AccountState
ACCOUNT_STATE_DISABLED: AccountState
ACCOUNT_STATE_PROBING: AccountState
PROBE_REASON_UNSPECIFIED: ProbeReason
PROBE_REASON_NEW: ProbeReason
PROBE_REASON_AFTER_COOLDOWN: ProbeReason
PROBE_REASON_HALF_OPEN: ProbeReason
PROBE_REASON_OPERATOR: ProbeReason
PROBE_REASON_RESTORED: ProbeReason
PROBE_REASON_NEW_CREDENTIAL: ProbeReason
USAGE_BUCKET_UNSPECIFIED: UsageBucket
USAGE_BUCKET_MINUTE: UsageBucket
USAGE_BUCKET_HOUR: UsageBucket
USAGE_BUCKET_DAY: UsageBucket

class SelectAccountRequest(_message.Message):
    __slots__ = ("pool", "model", "session_key", "exclude_account_ids", "estimated_input_tokens", "light", "conversation", "client")
    POOL_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SESSION_KEY_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_ACCOUNT_IDS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LIGHT_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    pool: str
    model: str
    session_key: str
    exclude_account_ids: _containers.RepeatedScalarFieldContainer[str]
    estimated_input_tokens: int
    light: bool
    conversation: bool
    client: ClientLimits
    def __init__(self, pool: _Optional[str] = ..., model: _Optional[str] = ..., session_key: _Optional[str] = ..., exclude_account_ids: _Optional[_Iterable[str]] = ..., estimated_input_tokens: _Optional[int] = ..., light: _Optional[bool] = ..., conversation: _Optional[bool] = ..., client: _Optional[_Union[ClientLimits, _Mapping]] = ...) -> None: ...

class ClientLimits(_message.Message):
    __slots__ = ("name", "rpm_limit", "tpm_limit", "daily_budget_usd", "monthly_budget_usd", "budget_timezone")
    NAME_FIELD_NUMBER: _ClassVar[int]
    RPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    TPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    DAILY_BUDGET_USD_FIELD_NUMBER: _ClassVar[int]
    MONTHLY_BUDGET_USD_FIELD_NUMBER: _ClassVar[int]
    BUDGET_TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    name: str
    rpm_limit: int
    tpm_limit: int
    daily_budget_usd: float
    monthly_budget_usd: float
    budget_timezone: str
    def __init__(self, name: _Optional[str] = ..., rpm_limit: _Optional[int] = ..., tpm_limit: _Optional[int] = ..., daily_budget_usd: _Optional[float] = ..., monthly_budget_usd: _Optional[float] = ..., budget_timezone: _Optional[str] = ...) -> None: ...

class Header(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class Lease(_message.Message):
    __slots__ = ("lease_id", "account_id", "account_name", "pool", "base_url", "credential", "extra_headers", "expires_at", "format", "probe", "proxy")
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_NAME_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    EXTRA_HEADERS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    PROBE_FIELD_NUMBER: _ClassVar[int]
    PROXY_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    account_id: str
    account_name: str
    pool: str
    base_url: str
    credential: Header
    extra_headers: _containers.RepeatedCompositeFieldContainer[Header]
    expires_at: _timestamp_pb2.Timestamp
    format: ApiFormat
    probe: bool
    proxy: str
    def __init__(self, lease_id: _Optional[str] = ..., account_id: _Optional[str] = ..., account_name: _Optional[str] = ..., pool: _Optional[str] = ..., base_url: _Optional[str] = ..., credential: _Optional[_Union[Header, _Mapping]] = ..., extra_headers: _Optional[_Iterable[_Union[Header, _Mapping]]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., format: _Optional[_Union[ApiFormat, str]] = ..., probe: _Optional[bool] = ..., proxy: _Optional[str] = ...) -> None: ...

class ReportOutcomeRequest(_message.Message):
    __slots__ = ("lease_id", "outcome", "http_status", "retry_after_ms", "latency_ms", "time_to_first_token_ms", "input_tokens", "output_tokens", "rate_limit_headers", "detail", "early", "error_type", "error_code")
    class RateLimitHeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    TIME_TO_FIRST_TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_HEADERS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    EARLY_FIELD_NUMBER: _ClassVar[int]
    ERROR_TYPE_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    outcome: Outcome
    http_status: int
    retry_after_ms: int
    latency_ms: int
    time_to_first_token_ms: int
    input_tokens: int
    output_tokens: int
    rate_limit_headers: _containers.ScalarMap[str, str]
    detail: str
    early: bool
    error_type: str
    error_code: str
    def __init__(self, lease_id: _Optional[str] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., http_status: _Optional[int] = ..., retry_after_ms: _Optional[int] = ..., latency_ms: _Optional[int] = ..., time_to_first_token_ms: _Optional[int] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., rate_limit_headers: _Optional[_Mapping[str, str]] = ..., detail: _Optional[str] = ..., early: _Optional[bool] = ..., error_type: _Optional[str] = ..., error_code: _Optional[str] = ...) -> None: ...

class ReportOutcomeResponse(_message.Message):
    __slots__ = ("recorded", "detail", "account_state")
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_STATE_FIELD_NUMBER: _ClassVar[int]
    recorded: bool
    detail: str
    account_state: AccountState
    def __init__(self, recorded: _Optional[bool] = ..., detail: _Optional[str] = ..., account_state: _Optional[_Union[AccountState, str]] = ...) -> None: ...

class ListAccountsRequest(_message.Message):
    __slots__ = ("pool",)
    POOL_FIELD_NUMBER: _ClassVar[int]
    pool: str
    def __init__(self, pool: _Optional[str] = ...) -> None: ...

class RateLimitHeadroom(_message.Message):
    __slots__ = ("requests_remaining", "requests_limit", "input_tokens_remaining", "input_tokens_limit", "output_tokens_remaining", "output_tokens_limit", "reset_in_ms", "fraction")
    REQUESTS_REMAINING_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_LIMIT_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_REMAINING_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_LIMIT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_REMAINING_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_LIMIT_FIELD_NUMBER: _ClassVar[int]
    RESET_IN_MS_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    requests_remaining: int
    requests_limit: int
    input_tokens_remaining: int
    input_tokens_limit: int
    output_tokens_remaining: int
    output_tokens_limit: int
    reset_in_ms: int
    fraction: float
    def __init__(self, requests_remaining: _Optional[int] = ..., requests_limit: _Optional[int] = ..., input_tokens_remaining: _Optional[int] = ..., input_tokens_limit: _Optional[int] = ..., output_tokens_remaining: _Optional[int] = ..., output_tokens_limit: _Optional[int] = ..., reset_in_ms: _Optional[int] = ..., fraction: _Optional[float] = ...) -> None: ...

class AccountStatus(_message.Message):
    __slots__ = ("account_id", "name", "state", "reason", "cooldown_remaining_ms", "in_flight", "max_concurrency", "priority", "weight", "requests_total", "successes_total", "failures_total", "rate_limited_total", "input_tokens_total", "output_tokens_total", "consecutive_failures", "recent_latency_ms", "error_rate", "headroom", "credential_redacted", "probe_reason", "model_cooldowns")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    COOLDOWN_REMAINING_MS_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    SUCCESSES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    FAILURES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMITED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    RECENT_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    HEADROOM_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_REDACTED_FIELD_NUMBER: _ClassVar[int]
    PROBE_REASON_FIELD_NUMBER: _ClassVar[int]
    MODEL_COOLDOWNS_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    name: str
    state: AccountState
    reason: str
    cooldown_remaining_ms: int
    in_flight: int
    max_concurrency: int
    priority: int
    weight: int
    requests_total: int
    successes_total: int
    failures_total: int
    rate_limited_total: int
    input_tokens_total: int
    output_tokens_total: int
    consecutive_failures: int
    recent_latency_ms: float
    error_rate: float
    headroom: RateLimitHeadroom
    credential_redacted: str
    probe_reason: ProbeReason
    model_cooldowns: _containers.RepeatedCompositeFieldContainer[ModelCooldown]
    def __init__(self, account_id: _Optional[str] = ..., name: _Optional[str] = ..., state: _Optional[_Union[AccountState, str]] = ..., reason: _Optional[str] = ..., cooldown_remaining_ms: _Optional[int] = ..., in_flight: _Optional[int] = ..., max_concurrency: _Optional[int] = ..., priority: _Optional[int] = ..., weight: _Optional[int] = ..., requests_total: _Optional[int] = ..., successes_total: _Optional[int] = ..., failures_total: _Optional[int] = ..., rate_limited_total: _Optional[int] = ..., input_tokens_total: _Optional[int] = ..., output_tokens_total: _Optional[int] = ..., consecutive_failures: _Optional[int] = ..., recent_latency_ms: _Optional[float] = ..., error_rate: _Optional[float] = ..., headroom: _Optional[_Union[RateLimitHeadroom, _Mapping]] = ..., credential_redacted: _Optional[str] = ..., probe_reason: _Optional[_Union[ProbeReason, str]] = ..., model_cooldowns: _Optional[_Iterable[_Union[ModelCooldown, _Mapping]]] = ...) -> None: ...

class ModelCooldown(_message.Message):
    __slots__ = ("scope", "remaining_ms", "reason", "probing")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    REMAINING_MS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PROBING_FIELD_NUMBER: _ClassVar[int]
    scope: str
    remaining_ms: int
    reason: str
    probing: bool
    def __init__(self, scope: _Optional[str] = ..., remaining_ms: _Optional[int] = ..., reason: _Optional[str] = ..., probing: _Optional[bool] = ...) -> None: ...

class PoolStatus(_message.Message):
    __slots__ = ("name", "format", "strategy", "base_url", "accounts", "available", "waiting")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    name: str
    format: ApiFormat
    strategy: str
    base_url: str
    accounts: _containers.RepeatedCompositeFieldContainer[AccountStatus]
    available: int
    waiting: int
    def __init__(self, name: _Optional[str] = ..., format: _Optional[_Union[ApiFormat, str]] = ..., strategy: _Optional[str] = ..., base_url: _Optional[str] = ..., accounts: _Optional[_Iterable[_Union[AccountStatus, _Mapping]]] = ..., available: _Optional[int] = ..., waiting: _Optional[int] = ...) -> None: ...

class ListAccountsResponse(_message.Message):
    __slots__ = ("pools",)
    POOLS_FIELD_NUMBER: _ClassVar[int]
    pools: _containers.RepeatedCompositeFieldContainer[PoolStatus]
    def __init__(self, pools: _Optional[_Iterable[_Union[PoolStatus, _Mapping]]] = ...) -> None: ...

class GetUsageRequest(_message.Message):
    __slots__ = ("pool", "account", "since", "until", "bucket", "client", "by_client")
    POOL_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    BY_CLIENT_FIELD_NUMBER: _ClassVar[int]
    pool: str
    account: str
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    bucket: UsageBucket
    client: str
    by_client: bool
    def __init__(self, pool: _Optional[str] = ..., account: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., bucket: _Optional[_Union[UsageBucket, str]] = ..., client: _Optional[str] = ..., by_client: _Optional[bool] = ...) -> None: ...

class UsageRow(_message.Message):
    __slots__ = ("bucket_start", "pool", "account_id", "account_name", "requests", "successes", "errors", "rate_limited", "input_tokens", "output_tokens", "cost", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "ttft_p50_ms", "client")
    BUCKET_START_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_NAME_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    SUCCESSES_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMITED_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P50_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P95_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P99_MS_FIELD_NUMBER: _ClassVar[int]
    TTFT_P50_MS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    bucket_start: _timestamp_pb2.Timestamp
    pool: str
    account_id: str
    account_name: str
    requests: int
    successes: int
    errors: int
    rate_limited: int
    input_tokens: int
    output_tokens: int
    cost: float
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    ttft_p50_ms: float
    client: str
    def __init__(self, bucket_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., pool: _Optional[str] = ..., account_id: _Optional[str] = ..., account_name: _Optional[str] = ..., requests: _Optional[int] = ..., successes: _Optional[int] = ..., errors: _Optional[int] = ..., rate_limited: _Optional[int] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cost: _Optional[float] = ..., latency_p50_ms: _Optional[float] = ..., latency_p95_ms: _Optional[float] = ..., latency_p99_ms: _Optional[float] = ..., ttft_p50_ms: _Optional[float] = ..., client: _Optional[str] = ...) -> None: ...

class GetUsageResponse(_message.Message):
    __slots__ = ("rows",)
    ROWS_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[UsageRow]
    def __init__(self, rows: _Optional[_Iterable[_Union[UsageRow, _Mapping]]] = ...) -> None: ...

class AccountRef(_message.Message):
    __slots__ = ("pool", "account")
    POOL_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    pool: str
    account: str
    def __init__(self, pool: _Optional[str] = ..., account: _Optional[str] = ...) -> None: ...

class DisableAccountRequest(_message.Message):
    __slots__ = ("pool", "account", "reason")
    POOL_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    pool: str
    account: str
    reason: str
    def __init__(self, pool: _Optional[str] = ..., account: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class AddAccountRequest(_message.Message):
    __slots__ = ("pool", "name", "key", "key_env", "weight", "priority", "rpm_limit", "itpm_limit", "otpm_limit", "max_concurrency")
    POOL_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    KEY_ENV_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    RPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    ITPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    OTPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    pool: str
    name: str
    key: str
    key_env: str
    weight: int
    priority: int
    rpm_limit: int
    itpm_limit: int
    otpm_limit: int
    max_concurrency: int
    def __init__(self, pool: _Optional[str] = ..., name: _Optional[str] = ..., key: _Optional[str] = ..., key_env: _Optional[str] = ..., weight: _Optional[int] = ..., priority: _Optional[int] = ..., rpm_limit: _Optional[int] = ..., itpm_limit: _Optional[int] = ..., otpm_limit: _Optional[int] = ..., max_concurrency: _Optional[int] = ...) -> None: ...

class RemoveAccountResponse(_message.Message):
    __slots__ = ("account_id", "draining_leases")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    DRAINING_LEASES_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    draining_leases: int
    def __init__(self, account_id: _Optional[str] = ..., draining_leases: _Optional[int] = ...) -> None: ...

class ReloadRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReloadResponse(_message.Message):
    __slots__ = ("pools_added", "pools_removed", "accounts_added", "accounts_removed")
    POOLS_ADDED_FIELD_NUMBER: _ClassVar[int]
    POOLS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_ADDED_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    pools_added: _containers.RepeatedScalarFieldContainer[str]
    pools_removed: _containers.RepeatedScalarFieldContainer[str]
    accounts_added: _containers.RepeatedScalarFieldContainer[str]
    accounts_removed: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, pools_added: _Optional[_Iterable[str]] = ..., pools_removed: _Optional[_Iterable[str]] = ..., accounts_added: _Optional[_Iterable[str]] = ..., accounts_removed: _Optional[_Iterable[str]] = ...) -> None: ...

class StreamSelect(_message.Message):
    __slots__ = ("id", "request", "timeout_ms")
    ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    id: int
    request: SelectAccountRequest
    timeout_ms: int
    def __init__(self, id: _Optional[int] = ..., request: _Optional[_Union[SelectAccountRequest, _Mapping]] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class ExchangeRequest(_message.Message):
    __slots__ = ("selects", "reports", "cancels", "sync")
    SELECTS_FIELD_NUMBER: _ClassVar[int]
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    CANCELS_FIELD_NUMBER: _ClassVar[int]
    SYNC_FIELD_NUMBER: _ClassVar[int]
    selects: _containers.RepeatedCompositeFieldContainer[StreamSelect]
    reports: _containers.RepeatedCompositeFieldContainer[ReportOutcomeRequest]
    cancels: _containers.RepeatedScalarFieldContainer[int]
    sync: int
    def __init__(self, selects: _Optional[_Iterable[_Union[StreamSelect, _Mapping]]] = ..., reports: _Optional[_Iterable[_Union[ReportOutcomeRequest, _Mapping]]] = ..., cancels: _Optional[_Iterable[int]] = ..., sync: _Optional[int] = ...) -> None: ...

class StreamError(_message.Message):
    __slots__ = ("code", "message", "retry_after_ms", "cause")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    retry_after_ms: int
    cause: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., retry_after_ms: _Optional[int] = ..., cause: _Optional[str] = ...) -> None: ...

class StreamResult(_message.Message):
    __slots__ = ("id", "lease", "error")
    ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    id: int
    lease: Lease
    error: StreamError
    def __init__(self, id: _Optional[int] = ..., lease: _Optional[_Union[Lease, _Mapping]] = ..., error: _Optional[_Union[StreamError, _Mapping]] = ...) -> None: ...

class ExchangeResponse(_message.Message):
    __slots__ = ("results", "synced")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    SYNCED_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[StreamResult]
    synced: int
    def __init__(self, results: _Optional[_Iterable[_Union[StreamResult, _Mapping]]] = ..., synced: _Optional[int] = ...) -> None: ...

class WatchTopologyRequest(_message.Message):
    __slots__ = ("known_version",)
    KNOWN_VERSION_FIELD_NUMBER: _ClassVar[int]
    known_version: str
    def __init__(self, known_version: _Optional[str] = ...) -> None: ...

class Topology(_message.Message):
    __slots__ = ("version", "document")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    version: str
    document: str
    def __init__(self, version: _Optional[str] = ..., document: _Optional[str] = ...) -> None: ...
