"""A bank provider that is not the sandbox, for the browser test: it takes the login
on our own page as the sandbox does, but, like a real provider, gives no hint."""

from __future__ import annotations

from core.banking.banks import SandboxProvider


class QuietFormProvider(SandboxProvider):
    name = "quiet-form"

    def sandbox_hint(self) -> str | None:
        return None
