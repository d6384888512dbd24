"""The console's labels in English and Dutch, chosen by the browser's ``Accept-Language``."""

from __future__ import annotations

from collections.abc import Callable

Lang = str
LANGS: tuple[Lang, ...] = ("en", "nl")

LABELS: dict[str, tuple[str, str]] = {
    # key: (English, Dutch)
    "title": ("gradesync console", "gradesync-console"),
    "overview": ("Overview", "Overzicht"),
    "attention": ("Needs attention", "Aandacht nodig"),
    "search": ("Search", "Zoeken"),
    "logout": ("Log out", "Afmelden"),
    "login": ("Log in", "Aanmelden"),
    "user": ("User name", "Gebruikersnaam"),
    "password": ("Password", "Wachtwoord"),
    "login_needed": ("Log in to see this page.", "Meld u aan om deze pagina te zien."),
    "login_failed": ("Wrong user name or password.", "Onjuiste gebruikersnaam of wachtwoord."),
    "login_limited": (
        "Too many login attempts; wait a moment and try again.",
        "Te veel aanmeldpogingen; wacht even en probeer het opnieuw.",
    ),
    "forbidden": (
        "This form has expired or did not come from this console; reload the page and try again.",
        "Dit formulier is verlopen of kwam niet van deze console; laad de pagina opnieuw.",
    ),
    "unconfigured": (
        "The console is not configured: set GRADESYNC_CONSOLE_USERS and "
        "GRADESYNC_CONSOLE_SECRET (or GRADESYNC_INSECURE_DEV=1 on a development machine).",
        "De console is niet ingesteld: zet GRADESYNC_CONSOLE_USERS en GRADESYNC_CONSOLE_SECRET "
        "(of GRADESYNC_INSECURE_DEV=1 op een ontwikkelmachine).",
    ),
    "unavailable": (
        "The ledger (Redis) is unreachable; try again shortly.",
        "Het grootboek (Redis) is onbereikbaar; probeer het zo opnieuw.",
    ),
    "not_found": ("No such record.", "Dit record bestaat niet."),
    "state": ("State", "Status"),
    "records": ("Records", "Records"),
    "delivered_today": ("Delivered today", "Vandaag afgeleverd"),
    "delivered_week": ("Delivered this week", "Deze week afgeleverd"),
    "budget": ("Coachview budget today", "Coachview-budget vandaag"),
    "budget_used": ("used", "gebruikt"),
    "budget_left": ("left", "over"),
    "budget_resets": ("resets", "herstart"),
    "budget_unknown": (
        "no Coachview answer seen in the current window",
        "nog geen antwoord van Coachview in deze periode",
    ),
    "projected": (
        "completions per day at today's rate",
        "afrondingen per dag in het tempo van vandaag",
    ),
    "oldest_unresolved": ("Oldest unresolved record", "Oudste onopgeloste record"),
    "none": ("none", "geen"),
    "alert_failed": (
        "records failed: they need a look (Needs attention)",
        "records zijn mislukt: bekijk ze (Aandacht nodig)",
    ),
    "alert_budget": (
        "Coachview's daily budget is nearly spent",
        "Het dagbudget van Coachview is bijna op",
    ),
    "all_well": ("Nothing needs attention.", "Niets vraagt aandacht."),
    "group": ("What to fix", "Wat te herstellen"),
    "count": ("Count", "Aantal"),
    "oldest": ("Oldest completion", "Oudste afronding"),
    "days_left": ("Days left before give-up", "Dagen tot opgeven"),
    "installation": ("Installation", "Installatie"),
    "installations": ("Installations", "Installaties"),
    "per_installation": ("Needing attention, per installation", "Aandacht nodig, per installatie"),
    "retry_now": ("Retry now", "Nu opnieuw proberen"),
    "retried": ("records queued again", "records opnieuw in de wachtrij"),
    "give_up": ("Give up", "Opgeven"),
    "reason": ("Reason", "Reden"),
    "reason_needed": (
        "Give a reason of 1 to 500 characters.",
        "Geef een reden van 1 tot 500 tekens.",
    ),
    "action_refused": ("Not possible now", "Nu niet mogelijk"),
    "search_hint": (
        "LMS person id, course id, event id or record key",
        "LMS-persoons-id, cursus-id, event-id of recordsleutel",
    ),
    "no_results": ("Nothing found.", "Niets gevonden."),
    "more_results": ("more not shown", "meer niet getoond"),
    "record": ("Record", "Record"),
    "key": ("Key", "Sleutel"),
    "person": ("Person", "Persoon"),
    "course": ("Course", "Cursus"),
    "source": ("Source", "Bron"),
    "completed": ("Completed", "Afgerond"),
    "grade": ("Grade", "Cijfer"),
    "updated": ("Updated", "Bijgewerkt"),
    "first_seen": ("First seen", "Eerst gezien"),
    "next_attempt": ("Next attempt", "Volgende poging"),
    "event": ("Event", "Gebeurtenis"),
    "history": ("History", "Geschiedenis"),
    "outcome": ("Coachview outcome", "Uitkomst in Coachview"),
    "last_error": ("Last error", "Laatste fout"),
    "by": ("by", "door"),
    "refreshes": (
        "This page refreshes every 30 seconds.",
        "Deze pagina ververst elke 30 seconden.",
    ),
    # States
    "queued": ("queued", "in de wachtrij"),
    "in_progress": ("in progress", "bezig"),
    "delivered": ("delivered", "afgeleverd"),
    "unresolved": ("unresolved", "onopgelost"),
    "given_up": ("given up", "opgegeven"),
    "failed": ("failed", "mislukt"),
    "shadowed": ("shadowed", "overschaduwd"),
    # Groups (report.py's reasons)
    "unknown_person": ("Unknown person", "Onbekende persoon"),
    "unknown_course": ("Unknown course", "Onbekende cursus"),
    "not_enrolled": ("Not enrolled", "Niet ingeschreven"),
    "rejected": ("Rejected by Coachview", "Geweigerd door Coachview"),
    "unexpected_response": ("Unexpected answer", "Onverwacht antwoord"),
    "unreadable": ("Unreadable record", "Onleesbaar record"),
    "fix_unknown_person": (
        "store the LMS person id on the Coachview person (externId)",
        "zet het LMS-persoons-id op de persoon in Coachview (externId)",
    ),
    "fix_unknown_course": (
        "put the LMS course id on the training's e-learning component (elearningCode)",
        "zet het LMS-cursus-id op het e-learningonderdeel van de opleiding (elearningCode)",
    ),
    "fix_not_enrolled": (
        "enrol the person on a training that has this e-learning component",
        "schrijf de persoon in op een opleiding met dit e-learningonderdeel",
    ),
}


def choose(accept_language: str | None) -> Lang:
    """The first of our languages the browser prefers (by q-value), English otherwise."""
    best: tuple[float, int, Lang] | None = None
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower().split("-")[0]
        if lang not in LANGS:
            continue
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        candidate = (-q, position, lang)
        if q > 0 and (best is None or candidate < best):
            best = candidate
    return best[2] if best is not None else "en"


def translator(lang: Lang) -> Callable[[str], str]:
    """Label by key; an unknown key (a new error code, say) is shown as it is."""
    index = LANGS.index(lang)
    return lambda key: LABELS[key][index] if key in LABELS else key
