"""The files that deploy poolgate (image, compose, systemd) and the package they install."""
