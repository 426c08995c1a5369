"""What keys may spend and use, and the record of what they spent.

`limits` (what a key carries), `call_context` (who a provider call is for), `budgets`
(atomic reservations in the database), `rates` (rpm, tpm, calls at once), `ledger` (the
group-committed usage rows and settlements), `meter` (the one seam every provider call
passes through), `key_store` (keys' limits, read and written).
"""
