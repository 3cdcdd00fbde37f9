"""
Which guest checkouts this browser created (contract §3: the guest who pays
in the browser that created the checkout is signed in there, never in another
client that merely holds the id). Kept in the session, a few at most.
"""

SESSION_KEY = "billing_guest_checkouts"
KEPT = 5


def remember_guest_checkout(session, public_id) -> None:
    kept = [value for value in session.get(SESSION_KEY, []) if value != str(public_id)]
    session[SESSION_KEY] = (kept + [str(public_id)])[-KEPT:]


def created_here(session, public_id) -> bool:
    return str(public_id) in session.get(SESSION_KEY, [])


def forget_guest_checkout(session, public_id) -> None:
    session[SESSION_KEY] = [value for value in session.get(SESSION_KEY, []) if value != str(public_id)]
