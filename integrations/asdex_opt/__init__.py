"""asdex_opt: sparse second-order optimization for Equinox, Lineax, Optimistix and Optax."""
