"""The accounts intake (`lc run accounts-api`): the web app's linked-account and identity writes
(OAuth callbacks, manual links, unlinks, the Steam return route, identity removal) as events on the
compacted lc.accounts, never as rows."""
