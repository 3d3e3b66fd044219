"""HTTP API: node-to-node exchange and the agencies' integration API."""
