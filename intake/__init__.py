"""HTTP intakes: untrusted input from outside (uploads, registrations, the web app's writes) checked at the
door with one signature check and one body and validation policy, then published as facts."""
