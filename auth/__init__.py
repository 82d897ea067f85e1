"""The identity service: users, OAuth clients, signing keys; an OAuth 2.1 / OIDC provider."""
