"""The Canaliza service kernel.

Everything every service is built from: settings, database engines and sessions,
the error model, token checking, events (outbox, bus, relay), the app factory, the typed
event contracts, the shared vocabulary and typed service clients. The kernel never
imports a domain package (auth, capacity, referral, audit, frontend) nor the composition
root (:mod:`canaliza`), the one package that knows them all (``tests/test_architecture.py``).
"""
