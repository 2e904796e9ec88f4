"""brainCloud wire compatibility (SPEC §11): the packets official brainCloud clients and S2S
backends send, translated to the services the JSON API calls.

- `packets`: the envelope, success/error entries, our errors as wire entries, the resend slot.
- `records`: code records in brainCloud's shape (epoch milliseconds, 0-based attempts).
"""
