"""Accounts: guests, registration, sign-in, tokens, the audit log and GDPR export/erasure."""
