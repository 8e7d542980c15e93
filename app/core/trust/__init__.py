"""What makes an answer safe to show and a request safe to send.

`grounding` checks an answer against its passages (with `attribution`, which finds the
passage each sentence rests on, and `price_claims`, which reads prices precisely);
`relevance` judges whether a draft or a quote answers the question asked; `injection`
quarantines passages that address the model; `egress` redacts personal data and applies
local-only rules; `secrets` keeps the API key out of everything written or shown. The
gates here are calibrated on labelled data (see the README's measurements).
"""
