"""A toy scenario: greet, check the greeting is long enough (a gate), clean up."""
