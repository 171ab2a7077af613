"""Intake of challenge metadata: `lc challenge register FILE` and the `registrations-api` HTTP stage.

Both validate with `registration.validate_registration`, publish a valid registration as a
`ChallengeRegistered` event to lc.challenges.registered (key: challenge id) and route a refused one
to lc.dlq with the reason; nothing is published for a refused registration.
"""
