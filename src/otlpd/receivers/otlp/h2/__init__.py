"""A server-side HTTP/2 connection made for gRPC unary calls (see ``connection``)."""
