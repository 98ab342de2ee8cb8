"""The selector service: owns the account pools and hands out leases over gRPC."""
