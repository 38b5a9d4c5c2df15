"""What each kind of email says, in plain text and HTML.

Rendered here rather than stored as SES templates: they are versioned and tested with
the code that fills them, and a deploy cannot leave the two out of step. No tracking:
no images, no links through a redirector, nothing that reports an open.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from string import Template


@dataclass(frozen=True, slots=True)
class Email:
    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class _Kind:
    subject: str
    body: str  # paragraphs separated by blank lines; $product, $secret, $minutes


TEMPLATES = {
    "verify": _Kind(
        subject="Your $product verification code: $secret",
        body=(
            "Your $product verification code is $secret\n\n"
            "Enter it to finish creating your account. It works for $minutes minutes.\n\n"
            "If you did not sign up for $product, ignore this email: "
            "no account is made without the code."
        ),
    ),
    "sign_in_code": _Kind(
        subject="Your $product sign-in code: $secret",
        body=(
            "Your $product sign-in code is $secret\n\n"
            "It works for $minutes minutes, once.\n\n"
            "If you did not try to sign in, someone has your password: reset it now."
        ),
    ),
    "password_reset": _Kind(
        subject="Reset your $product password",
        body=(
            "Someone asked to reset the password of your $product account.\n\n"
            "Your reset token is:\n\n$secret\n\n"
            "Send it with a new password to POST /api/accounts/password-reset/confirm. "
            "It works for $minutes minutes, once, and signs out every session of the account.\n\n"
            "If you did not ask, ignore this email: your password stays as it is."
        ),
    ),
    "already_registered": _Kind(
        subject="Someone tried to create a $product account with your address",
        body=(
            "Someone tried to create a $product account with this email address, which "
            "already has one. No new account was made and nothing changed.\n\n"
            "If it was you, sign in instead, or reset your password if you forgot it."
        ),
    ),
}


def render(template: str, *, product: str, secret: str = "", minutes: int = 0) -> Email:
    kind = TEMPLATES[template]
    values = {"product": product, "secret": secret, "minutes": str(minutes)}
    text = Template(kind.body).substitute(values)
    escaped = {name: html.escape(value) for name, value in values.items()}
    paragraphs = Template(kind.body).substitute(escaped).split("\n\n")
    body = "".join(f"<p>{paragraph}</p>" for paragraph in paragraphs)
    return Email(
        subject=Template(kind.subject).substitute(values),
        text=text + "\n",
        html=f'<!doctype html><html><body style="font-family:sans-serif">{body}</body></html>',
    )
