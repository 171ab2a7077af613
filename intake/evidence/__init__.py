"""The JSON evidence intake (`lc run evidence-api`): the web app's evidence writes (`/api/aivm/intake`
JSON submissions, `/api/v1/evidence/submit-match`, the FACEIT webhook) as EvidenceSubmitted facts."""
