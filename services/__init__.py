"""The Canaliza service kernel.

Everything every service is built from: settings, database engines and sessions,
the error model, token checking, events (outbox, bus, relay), the app factory and
typed service clients. The kernel never imports a domain package (auth, capacity,
referral, audit, frontend); only :mod:`canaliza.launcher` and :mod:`canaliza.seed`
know them all.
"""
