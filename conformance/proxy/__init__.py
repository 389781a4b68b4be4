"""The validating proxy (D13): the contract checked on real traffic between a client and a
server. `layers-conformance proxy --target URL`; see command.py for the command, checks.py for
what it judges."""
