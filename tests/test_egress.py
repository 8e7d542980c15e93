"""Redaction before anything leaves the machine, and local-only docs."""
from __future__ import annotations

import pytest

from app.core.egress import Redaction, is_local_only, redact

SUPPORT = "support@quillstack.example"


def redacted(text: str, **kwargs) -> str:
    return redact(text, **kwargs).text


@pytest.mark.parametrize("email", ["jane.doe@gmail.com", "J.Doe+billing@Example.co.uk", "ops_team@corp-mail.io"])
def test_emails_are_redacted(email):
    assert redacted(f"Reply to {email}, thanks.") == "Reply to [EMAIL], thanks."


def test_allowlisted_addresses_are_kept_whatever_their_case():
    result = redact(f"Write to {SUPPORT.upper()} or bob@example.com.", keep={SUPPORT})
    assert result == Redaction(f"Write to {SUPPORT.upper()} or [EMAIL].", 1, {"email": 1})
    assert redacted(f"Write to {SUPPORT}.") == "Write to [EMAIL]."  # no allowlist, no exception


@pytest.mark.parametrize("phone", ["+44 20 7946 0958", "+1 (415) 555-0100", "+14155550100", "(415) 555-0100",
                                   "415-555-0100", "415.555.0100", "1-800-555-0199", "+33 1 23 45 67 89"])
def test_phone_numbers_are_redacted(phone):
    assert redacted(f"Call me on {phone} today.") == "Call me on [PHONE] today."


@pytest.mark.parametrize("text", [
    "Team costs $1,299.00 per year, or $49/month.",
    "Invoices are due on 2024-01-15 and 15/01/2024.",
    "Upgrade to version 2.13.0 or v10.4.1.",
    "The API returns HTTP 404, 429 or 503.",
    "Order 5551234567 shipped in 2024.",
    "Call GET /v2/documents/{document_id} or /api/v1/organizations/members/invitations.",
    "Open ticket #123456 for 10.0.0.1 port 8080.",
    "Use getCustomerSubscriptionByIdentifier2 or customer_subscription_updated_event_v2.",
    "Request 550e8400-e29b-41d4-a716-446655440000 failed.",
    "Bearer authentication uses the Authorization header.",
    "Limits: 5,000 envelopes, 100 requests/minute, 20% off.",
])
def test_ordinary_support_text_is_left_alone(text):
    assert redact(text) == Redaction(text, 0, {})


@pytest.mark.parametrize("card", ["4111 1111 1111 1111", "4242-4242-4242-4242", "5555555555554444", "378282246310005"])
def test_luhn_valid_card_numbers_are_redacted(card):
    assert redacted(f"My card is {card}.") == "My card is [CARD]."


@pytest.mark.parametrize("number", ["4111 1111 1111 1112", "1234 5678 9012 3456", "4242424242424241"])
def test_luhn_invalid_numbers_are_not_cards(number):
    assert redacted(f"Reference {number}.") == f"Reference {number}."


@pytest.mark.parametrize("iban", ["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "FR14 2004 1010 0505 0001 3M02 606"])
def test_checksum_valid_ibans_are_redacted(iban):
    assert redacted(f"Pay into {iban} please.") == "Pay into [IBAN] please."


def test_ibans_with_a_bad_checksum_are_kept():
    assert redacted("Pay into GB82WEST12345698765433 please.") == "Pay into GB82WEST12345698765433 please."


@pytest.mark.parametrize("secret", [
    "sk-ant-api03-AbCdEf1234567890abcdefGHIJ",
    "sk-proj-abcdefghijklmnop1234567890",
    "sk_live_51HxYzAbCdEfGhIjKlMn",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
    "xoxb-1234567890-0987654321-AbCdEfGhIjKl",
    "xoxp-1234567890-abcdefghij",
    "AKIAIOSFODNN7EXAMPLE",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MEFCQ0RFRkdISUpLTE1O==",
])
def test_api_keys_and_tokens_are_redacted(secret):
    assert redacted(f"The key is {secret} ok") == "The key is [SECRET] ok"


def test_credentials_keep_their_label():
    assert redacted("Authorization: Bearer abc123def456ghi7") == "Authorization: Bearer [SECRET]"
    assert redacted('api_key="Sup3rSecretValue" and password: hunter22') == 'api_key="[SECRET]" and password: [SECRET]'


def test_a_random_id_inside_a_path_is_redacted_but_the_path_words_stay():
    text = "GET /v2/files/Q2hhbmdlTWVQbGVhc2U5OTg3NjU0MzIxMEFCQw/download"
    assert redacted(text) == "GET /v2/files/[SECRET]/download"


def test_counts_and_kinds_cover_a_mixed_message():
    text = ("I'm jane@corp.example, +44 20 7946 0958, card 4111 1111 1111 1111, IBAN DE89370400440532013000, "
            "key sk-ant-api03-AbCdEf1234567890abcdef. My plan is $49 since 2024-01-15.")
    result = redact(text)
    assert result.kinds == {"email": 1, "phone": 1, "card": 1, "iban": 1, "secret": 1}
    assert result.count == 5
    assert result.text == ("I'm [EMAIL], [PHONE], card [CARD], IBAN [IBAN], key [SECRET]. My plan is $49 since 2024-01-15.")


def test_redaction_is_idempotent():
    once = redacted("Mail bob@example.com, card 4111111111111111, key ghp_abcdefghijklmnopqrstuvwxyz0123456789")
    assert redact(once) == Redaction(once, 0, {})


@pytest.mark.parametrize("file, globs, expected", [
    ("internal/hr/pay.md", ["internal/"], True),
    ("internal/hr/pay.md", ["internal"], True),
    ("internal.md", ["internal/"], False),
    ("docs/internal/a.md", ["internal/"], False),
    ("docs/private/a.md", ["*/private"], True),
    ("docs/private/a.md", ["docs/*/"], True),
    ("a/b/secret.md", ["**/secret.md"], True),
    ("secret.md", ["**/secret.md"], True),
    ("./finance/q1.pdf", ["*.pdf"], True),
    ("finance\\q1.pdf", ["finance/"], True),
    ("guides/start.md", ["internal/", "*.pdf"], False),
    ("guides/start.md", [], False),
    ("Guides/Start.md", ["guides/"], False),  # POSIX matching is case-sensitive
])
def test_local_only_globs(file, globs, expected):
    assert is_local_only(file, globs) is expected
