"""Redaction before anything leaves the machine, and local-only docs."""
from __future__ import annotations

import shutil

import pytest

from app.core.passage import Passage
from app.core.trust.egress import published_emails
from app.core.trust.egress import Redaction, is_local_only, redact
from conftest import ROOT

SUPPORT = "support@quillstack.example"
PII_DOCS = ROOT / "tests" / "fixtures" / "pii_docs"


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


@pytest.mark.parametrize("text, expected", [
    ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key=[SECRET]"),
    ("STRIPE_SECRET_KEY: Zx81kLm20PqRsT", "STRIPE_SECRET_KEY: [SECRET]"),
    ("token: a8Kd93jfLq02mZx7Pw4nRt6Y", "token: [SECRET]"),
    ("my API key 9aKd83jfLq02mZx7Pw4nRt6Yb1Cd", "my API key [SECRET]"),
    ('api key = "s3cr3tValue99"', 'api key = "[SECRET]"'),
    ("Authorization: Token 9944b09199c62bcf", "Authorization: Token [SECRET]"),
    ("Authorization: Bearer Tk4mZp8Qr2", "Authorization: Bearer [SECRET]"),
    ("Authorization: xKq82LmZp0wT", "Authorization: [SECRET]"),
    ("my password is hunter2", "my password is [SECRET]"),
    ("My Gmail password was sunshine!", "My Gmail password was [SECRET]!"),
    ("use glpat-xK3mN8pQ2rS5tV7wY9zA now", "use [SECRET] now"),
    ("use xapp-1-A0123456789-1234567890123-abcdef0123 now", "use [SECRET] now"),
    ("use xoxb-123456789012-1234567890123-AbCdEfGhIjKl now", "use [SECRET] now"),
    ("use ghp_16C7e42F292c6912E7710c838347Ae178B4a now", "use [SECRET] now"),
    ("use github_pat_11AAAAAAA0aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbb now", "use [SECRET] now"),
    ("use sk_live_4eC39HqLyjWDarjtT1zdp7dc now", "use [SECRET] now"),
    ("use sk-ant-api03-abcDEF123 now", "use [SECRET] now"),
    ("use AKIAIOSFODNN7EXAMPLE now", "use [SECRET] now"),
    ("use eyJhbGciOiJub25lIn0.eyJzdWIiOiIxMjM0NSJ9. now", "use [SECRET] now"),  # unsigned: the dot is the JWT's
])
def test_labelled_and_prefixed_credentials_are_redacted(text, expected):
    assert redacted(text) == expected


@pytest.mark.parametrize("text", [
    # Code samples in docs name where a secret comes from; that is not the secret.
    "password: process.env.DB_PASSWORD, apiKey: process.env.QS_KEY!",
    'client = OpenAI(api_key=os.environ["OPENAI_API_KEY"])',
    "password: redisURL.password, token: req.headers.authorization?.replace('Bearer ', '')",
    "client_secret=YOUR_CLIENT_SECRET and API_KEY=${{shared.API_KEY}}",
    "curl -H 'Project-Access-Token: <PROJECT_TOKEN>' -H \"Authorization: Bearer $RAILWAY_TOKEN\"",
    "Send it as `Authorization: Bearer` and sign with X-Quillstack-Signature: t=1700000000.",
    'password: "password", password=a-strong-password, api_key="your-api-key", token: myProjectToken',
    "RAILWAY_TOKEN=XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX",
    'curl -H "Authorization: Bearer qs_live_4f9c2d0b7e1a..." (your key, elided)',
    "My password is not working and my password was rejected.",
    "max_tokens: 256, token_expiry: 3600. The token expires in 3600 seconds.",
    "import { NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk'",
    'secret(32, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")',
    "for port in 25 465 587 2525; do nc -z host $port; done",
    "Call GET /v2/documents 3 times; phone support is open 9-5.",
])
def test_docs_code_and_prose_about_credentials_are_left_alone(text):
    assert redact(text) == Redaction(text, 0, {})


@pytest.mark.parametrize("iban", ["de89 3704 0044 0532 0130 00", "nl91abna0417164300", "Gb82 West 1234 5698 7654 32"])
def test_ibans_in_any_case_and_grouping_are_redacted(iban):
    assert redacted(f"Pay into {iban} please.") == "Pay into [IBAN] please."


def test_an_iban_followed_by_a_word_is_still_found():
    assert redacted("IBAN: de89 3704 0044 0532 0130 00 thanks") == "IBAN: [IBAN] thanks"


@pytest.mark.parametrize("phone", ["020 7946 0958", "07700 900123", "0049 30 1234567", "0161-496-0000", "(555) 123-4567"])
def test_national_and_00_prefixed_phone_numbers_are_redacted(phone):
    assert redacted(f"Call me on {phone} today.") == "Call me on [PHONE] today."


@pytest.mark.parametrize("text, expected", [
    ("Call me at 5551234567 please", "Call me at [PHONE] please"),
    ("my mobile: 07700900123.", "my mobile: [PHONE]."),
    ("Order 5551234567 shipped in 2024.", "Order 5551234567 shipped in 2024."),  # no phone word: an order number
])
def test_a_bare_number_is_a_phone_only_next_to_a_phone_word(text, expected):
    assert redacted(text) == expected


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
    ("docs/internal/a.md", ["internal/"], True),  # gitignore: no slash but the trailing one = any depth
    ("docs/private/a.md", ["*/private"], True),
    ("docs/private/a.md", ["docs/*/"], True),
    ("a/b/secret.md", ["**/secret.md"], True),
    ("secret.md", ["**/secret.md"], True),
    ("./finance/q1.pdf", ["*.pdf"], True),
    ("finance\\q1.pdf", ["finance/"], True),
    ("guides/start.md", ["internal/", "*.pdf"], False),
    ("guides/start.md", [], False),
    ("Guides/Start.md", ["guides/"], True),  # case-insensitive, like the file systems of most laptops
])
def test_local_only_globs(file, globs, expected):
    assert is_local_only(file, globs) is expected


@pytest.mark.parametrize("file, globs", [
    ("internal/hr/pay.md", ["/internal/"]),  # a leading slash anchors at the docs folder
    ("billing/refunds.md", ["billing/**/refunds.md"]),  # ** is zero or more folders
    ("billing/eu/2024/refunds.md", ["billing/**/refunds.md"]),
    ("team/notes.md", ["notes.md"]),  # a bare name matches at any depth
    ("a/b/c/notes.md", ["notes.md"]),
    ("billing/refunds.MD", ["billing/refunds.md"]),
    ("Billing/Refunds.md", ["billing/*.md"]),
    ("contracts/alice.pdf", ["contracts/*.pdf"]),  # the README's example pattern
    ("hr/x.md", ["/hr"]),
    ("hr/x.md", ["/home/me/docs/hr/"]),  # an absolute path inside the docs folder
    ("/home/me/docs/hr/x.md", ["/hr/"]),  # an absolute file inside it
    ("hr/x.md", ["/home/me/docs"]),  # the docs folder itself: everything
    ("notes/2024[draft].md", ["notes/2024[[]draft].md"]),
])
def test_local_only_patterns_match_like_gitignore(file, globs):
    assert is_local_only(file, globs, root="/home/me/docs")


@pytest.mark.parametrize("file, globs", [
    ("docs/internal/a.md", ["/internal/"]),  # anchored: not a deeper folder of that name
    ("hr.md", ["hr/"]),  # a trailing slash means a folder
    ("billing/refunds.md.bak", ["refunds.md"]),
    ("billingx/refunds.md", ["billing/"]),
    ("other/hr/x.md", ["/home/me/docs/hr/"]),
    ("hr/x.md", ["/home/me/other-docs/hr/"]),
    ("a/b.md", ["a/*.pdf", "b/"]),
    ("hr/contracts/alice.pdf", ["contracts/*.pdf"]),  # a slash inside anchors, as in .gitignore
])
def test_local_only_patterns_do_not_over_match(file, globs):
    assert not is_local_only(file, globs, root="/home/me/docs")


def test_an_absolute_file_without_a_known_root_fails_closed():
    # The docs folder could be any folder on the path, so "/hr/" is tried at each of them.
    assert is_local_only("/home/me/docs/hr/x.md", ["/hr/"])
    assert is_local_only("C:\\Users\\me\\docs\\billing\\refunds.MD", ["billing/refunds.md"])


def passage(file: str, text: str) -> Passage:
    return Passage(id=f"{file}:{len(text)}", text=text, file=file, heading="", score=0.9)


def test_only_the_companys_own_role_addresses_are_kept():
    passages = [
        passage("customers/acme.md", "Acme's invoices go to billing@acme-corp.com, see https://acme-corp.com/ap."),
        passage("customers/acme.md", "Escalate to billing@acme-corp.com or info@acme-corp.com."),
        passage("billing/pricing.md", "Enterprise: contact sales@quillstack.example for a quote."),
        passage("api/authentication.md", "The base URL is https://api.quillstack.example/v1."),
        passage("esignature.txt", "Requests come from no-reply@sign.quillstack.example, not from jane@quillstack.example."),
    ]
    # quillstack.example recurs across three files; acme-corp.com is named by one file only.
    assert published_emails(passages) == {"sales@quillstack.example", "no-reply@sign.quillstack.example"}


def test_a_role_address_named_by_one_file_only_is_not_kept():
    assert published_emails([passage("customers/acme.md", "billing@acme-corp.com"),
                              passage("customers/acme.md", "https://acme-corp.com")]) == set()


@pytest.fixture(scope="module")
def pii_home(tmp_path_factory):
    from app.core.desk import Desk
    from app.core.settings import load_settings

    home = tmp_path_factory.mktemp("pii-home")
    events = list(Desk(load_settings(environ={"FRONTDESK_HOME": str(home)})).ingest(PII_DOCS))
    assert events[-1].summary.ok
    return home


def test_file_paths_and_headings_are_redacted_before_they_leave(pii_home, tmp_path):
    from app.core.desk import Desk
    from app.core.settings import load_settings
    from fake_anthropic import FakeAnthropic, cite_first_passage

    home = tmp_path / "home"
    shutil.copytree(pii_home, home)
    with FakeAnthropic(reply=cite_first_passage) as server:
        settings = load_settings(flags={"frontier.base_url": server.url, "frontier.max_retries": 0},
                                 environ={"FRONTDESK_HOME": str(home), "ANTHROPIC_API_KEY": "sk-ant-egress-test-0000000000"})
        turn = Desk(settings).assistant.answer("Why was Acme Corp charged twice on the March invoice? Will the refund come?")
        sent = server.requests[-1].json["messages"][0]["content"]
    assert 'source="customers/' in sent  # the customer's passage went, as it should, but anonymised
    for personal in ("jane.doe", "7946 0958", "4242 4242", "billing@acme-corp.com"):
        assert personal not in sent, personal
    assert 'source="customers/[EMAIL]"' in sent and "[PHONE]" in sent and "[CARD]" in sent
    assert "billing@quillstack.example" in sent  # the company's own address, in two of its files
    assert turn.redactions >= 4  # path, phone and card in the heading, the customer's address
