"""Test kit for price-bench and its plugins: local stand-ins of outside services."""
