"""The console's labels in English and Dutch, chosen by the browser's ``Accept-Language``."""

from __future__ import annotations

from collections.abc import Callable

from console.reconcile_labels import LABELS as RECONCILE_LABELS
from gradesync.usage import BUDGET_FIGURE

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
    "budget_resets": ("resets", "herstart"),
    "projected": (
        "more completions at today's rate",
        "afrondingen meer in het tempo van vandaag",
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
    "not_passed": ("not passed", "niet geslaagd"),
    "withdrawn": ("withdrawn", "ingetrokken"),
    # Groups (report.py's reasons)
    "unknown_person": ("Unknown person", "Onbekende persoon"),
    "unknown_course": ("Unknown course", "Onbekende cursus"),
    "not_enrolled": ("Not enrolled", "Niet ingeschreven"),
    "rejected": ("Rejected by Coachview", "Geweigerd door Coachview"),
    "unexpected_response": ("Unexpected answer", "Onverwacht antwoord"),
    "unreadable": ("Unreadable record", "Onleesbaar record"),
    "fix_unknown_person": (
        "In Coachview, open the person and enter the LMS person id in the field external id "
        "(externId); then retry.",
        "Open in Coachview de persoon en vul het LMS-persoons-id in bij extern id (externId); "
        "probeer het daarna opnieuw.",
    ),
    "fix_unknown_course": (
        "In Coachview, open the training and enter the LMS course id as the e-learning code "
        "of its e-learning component; then retry.",
        "Open in Coachview de opleiding en vul het LMS-cursus-id in als e-learningcode van het "
        "e-learningonderdeel; probeer het daarna opnieuw.",
    ),
    "fix_not_enrolled": (
        "In Coachview, enrol the person on a training that has this e-learning component; "
        "then retry.",
        "Schrijf de persoon in Coachview in op een opleiding met dit e-learningonderdeel; "
        "probeer het daarna opnieuw.",
    ),
    "fix_not_placed": (
        "Coachview could not place it: the person (external id), the course (e-learning "
        "code) or the enrolment is missing. Check all three in Coachview; then retry.",
        "Coachview kon het niet plaatsen: de persoon (extern id), de cursus (e-learningcode) "
        "of de inschrijving ontbreekt. Controleer alle drie in Coachview; probeer het daarna "
        "opnieuw.",
    ),
    "fix_unknown_installation": (
        "The LMS installation that sent it is not in the sources file. Add it there and "
        "restart gradesync, or give the record up if that LMS is gone.",
        "De LMS-installatie die het stuurde staat niet in het bronnenbestand. Voeg haar toe en "
        "herstart gradesync, of geef het record op als dat LMS weg is.",
    ),
    "fix_installation_disabled": (
        "The LMS installation is switched off (enabled: false) in the sources file. Switch it "
        "on and restart gradesync, or give the record up.",
        "De LMS-installatie staat uit (enabled: false) in het bronnenbestand. Zet haar aan en "
        "herstart gradesync, of geef het record op.",
    ),
    "fix_operator_gave_up": (
        "An administrator stopped these on purpose (the reason is on each record). Retry only "
        "if the reason no longer holds.",
        "Een beheerder heeft deze bewust gestopt (de reden staat bij elk record). Probeer "
        "alleen opnieuw als de reden niet meer geldt.",
    ),
    "fix_unreadable": (
        "Written by another version of gradesync or damaged: ask whoever runs gradesync to "
        "remove them.",
        "Geschreven door een andere versie van gradesync of beschadigd: vraag de beheerder van "
        "gradesync ze te verwijderen.",
    ),
    "fix_other": (
        "Open a record to read what went wrong; after fixing it in Coachview or the LMS, retry.",
        "Open een record om te lezen wat er misging; probeer het opnieuw na herstel in "
        "Coachview of het LMS.",
    ),
    # Error codes (a record's last error; the group headings of Needs attention)
    "not_placed": ("Not placed by Coachview", "Niet geplaatst door Coachview"),
    "unknown_installation": ("Unknown LMS installation", "Onbekende LMS-installatie"),
    "installation_disabled": ("LMS installation switched off", "LMS-installatie staat uit"),
    "operator_gave_up": ("Given up by an administrator", "Opgegeven door een beheerder"),
    "ambiguous_person": (
        "More than one Coachview person matches",
        "Meer dan één persoon in Coachview past",
    ),
    "rate_limited": (
        "Coachview's request limit was reached",
        "De verzoeklimiet van Coachview is bereikt",
    ),
    "timeout": ("No answer in time", "Geen antwoord op tijd"),
    "connection": ("Could not connect", "Geen verbinding"),
    "stalled": ("The delivery stalled", "De aflevering liep vast"),
    "unexpected_error": ("Unexpected error in gradesync", "Onverwachte fout in gradesync"),
    "coachview_is_simulator": (
        "Coachview is the simulator outside development",
        "Coachview is de simulator, buiten ontwikkeling",
    ),
    "lms_api_not_configured": (
        "The LMS's API is not configured",
        "De API van het LMS is niet ingesteld",
    ),
    "not_completed_in_lms": ("Not completed in the LMS", "Niet afgerond in het LMS"),
    "invalid_grade": ("The LMS's grade is not usable", "Het cijfer uit het LMS is onbruikbaar"),
    "invalid_lms_id": ("The LMS's id is not usable", "Het id uit het LMS is onbruikbaar"),
    "remote_error": ("Error from another system", "Fout van een ander systeem"),
    "transient": ("Temporary error", "Tijdelijke fout"),
    "stale": (
        "Changed in Coachview while being written",
        "Gewijzigd in Coachview tijdens het schrijven",
    ),
    "unqueryable_id": (
        "An id Coachview cannot search for",
        "Een id waarop Coachview niet kan zoeken",
    ),
    "budget_exhausted": (
        "Coachview's daily request budget is spent",
        "Het dagbudget aan verzoeken van Coachview is op",
    ),
    "grade_unavailable": (
        "The LMS has no grade for it yet",
        "Het LMS heeft er nog geen cijfer voor",
    ),
    "moodle_error": ("Moodle answered with an error", "Moodle gaf een foutmelding"),
    "moodle_bad_response": (
        "Moodle's answer is unreadable",
        "Het antwoord van Moodle is onleesbaar",
    ),
    "moodle_unexpected_response": (
        "Moodle answered something unexpected",
        "Moodle gaf een onverwacht antwoord",
    ),
    "ilias_fault": ("ILIAS answered with an error", "ILIAS gaf een foutmelding"),
    "ilias_bad_response": ("ILIAS's answer is unreadable", "Het antwoord van ILIAS is onleesbaar"),
    "unknown": ("Unknown reason", "Onbekende reden"),
    "coachview_example_values": (
        "Coachview answered with example values",
        "Coachview antwoordde met voorbeeldwaarden",
    ),
    "fix_coachview_example_values": (
        "Give gradesync's API client in Coachview the read right on persons (scope "
        "Personen.Lezen) and the other scopes gradesync doctor names; then retry.",
        "Geef de API-client van gradesync in Coachview het leesrecht op personen (scope "
        "Personen.Lezen) en de andere scopes die gradesync doctor noemt; probeer het daarna "
        "opnieuw.",
    ),
    "implausible_event": (
        "The LMS sent an implausible completion",
        "Het LMS stuurde een onwaarschijnlijke afronding",
    ),
    "fix_implausible_event": (
        "The completion's time or fields cannot be right: check the course completion in the "
        "LMS; a retry reads the LMS's own time and grade.",
        "De tijd of de velden van de afronding kloppen niet: controleer de cursusafronding in "
        "het LMS; opnieuw proberen leest de eigen tijd en het cijfer uit het LMS.",
    ),
    "moodle_field_not_readable": (
        "Moodle does not show the learner's ID number to gradesync",
        "Moodle toont het ID-nummer van de deelnemer niet aan gradesync",
    ),
    "fix_moodle_field_not_readable": (
        "In Moodle, give the web service user the capability moodle/user:viewalldetails (or "
        "add the ID number to the site's identity fields); then retry.",
        "Geef in Moodle de webservicegebruiker het recht moodle/user:viewalldetails (of voeg "
        "het ID-nummer toe aan de identiteitsvelden van de site); probeer het daarna opnieuw.",
    ),
    "fix_grade_unavailable": (
        "Check that the LMS has a grade for this course (for Moodle: the course total in the "
        "gradebook); gradesync tries again each day.",
        "Controleer of het LMS een cijfer voor deze cursus heeft (in Moodle: het cursustotaal "
        "in het cijferboek); gradesync probeert het elke dag opnieuw.",
    ),
    "fix_ambiguous_person": (
        "In Coachview, more than one person has this LMS id: keep it on one person only; then "
        "retry.",
        "In Coachview hebben meerdere personen dit LMS-id: laat het bij één persoon staan; "
        "probeer het daarna opnieuw.",
    ),
    "error_code": ("Error {code}", "Fout {code}"),
    "technical": ("Technical detail", "Technisch detail"),
    # A record's page
    "done_retry": (
        "Queued again: the earlier error is kept in the history below.",
        "Opnieuw in de wachtrij: de eerdere fout staat in de geschiedenis hieronder.",
    ),
    "done_give_up": ("Given up.", "Opgegeven."),
    "what_to_do": ("What to do", "Wat te doen"),
    "written": ("Written to Coachview", "Geschreven in Coachview"),
    "nothing_written": (
        "Coachview already held all of it: nothing needed writing.",
        "Coachview had alles al: er hoefde niets geschreven te worden.",
    ),
    "written_by_link": (
        "Sent through Coachview's e-learning result link (Coachview records it itself).",
        "Verstuurd via de e-learning-resultaatkoppeling van Coachview (Coachview legt het zelf "
        "vast).",
    ),
    "not_yet_written": ("Nothing written yet.", "Nog niets geschreven."),
    "field": ("Field", "Veld"),
    "old": ("Before", "Was"),
    "new": ("After", "Wordt"),
    "empty": ("(empty)", "(leeg)"),
    "yes": ("yes", "ja"),
    "no": ("no", "nee"),
    "f_result": ("Result (grade)", "Resultaat (cijfer)"),
    "f_attendance": ("Attended", "Aanwezig"),
    "f_passed": ("Passed", "Geslaagd"),
    "f_completed": ("Completed", "Afgerond"),
    "f_approved": ("Approved", "Goedgekeurd"),
    "f_approval_date": ("Approval date", "Goedkeuringsdatum"),
    "f_result_link": ("Result link", "Resultaatkoppeling"),
    "s_participation": ("participation", "deelname"),
    "s_request_component": ("training request component", "aanvraagonderdeel"),
    "s_result_link": ("result link", "resultaatkoppeling"),
    "time_zone": ("Times in {tz}", "Tijden in {tz}"),
    "event_id": ("Event id", "Event-id"),
    # History, one sentence per entry
    "h_received": ("Received from the LMS.", "Ontvangen van het LMS."),
    "h_later_event_ignored": (
        "A later event for this completion was ignored (it had grade {new}; {kept} stays).",
        "Een later bericht voor deze afronding is genegeerd (cijfer {new}; {kept} blijft).",
    ),
    "h_replaced": (
        "Replaced by a newer event from the LMS ({event_id}).",
        "Vervangen door een nieuwer bericht van het LMS ({event_id}).",
    ),
    "h_merged": (
        "Another event from the LMS ({event_id}) was merged in: the earliest completion and its"
        " grade stand.",
        "Een ander bericht van het LMS ({event_id}) is samengevoegd: de vroegste afronding en"
        " het cijfer daarvan gelden.",
    ),
    "h_reopened": (
        "Opened again by a new completion from the LMS ({event_id}); it was {was}.",
        "Heropend door een nieuwe afronding uit het LMS ({event_id}); de status was {was}.",
    ),
    "h_not_passed": (
        "The LMS says the learner did not pass ({event_id}): nothing is written to Coachview.",
        "Volgens het LMS is de deelnemer niet geslaagd ({event_id}): er wordt niets in Coachview"
        " geschreven.",
    ),
    "h_not_passed_after_pass": (
        "A later fail ({event_id}) was ignored: the pass recorded earlier stands.",
        "Een latere onvoldoende ({event_id}) is genegeerd: de eerder geregistreerde voldoende"
        " blijft staan.",
    ),
    "h_withdrawn": (
        "Withdrawn: the LMS voided this completion (statement {statement}); nothing is written.",
        "Ingetrokken: het LMS heeft deze afronding ongeldig verklaard (statement {statement});"
        " er wordt niets geschreven.",
    ),
    "h_voided_after_delivery": (
        "The LMS voided this completion (statement {statement}) after it was delivered: check"
        " the result in Coachview, where attendance and pass are locked.",
        "Het LMS heeft deze afronding ongeldig verklaard (statement {statement}) nadat ze was"
        " afgeleverd: controleer het resultaat in Coachview, waar presentie en slaging vastliggen.",
    ),
    "h_restarted": (
        "Started again with a newer event from the LMS ({event_id}).",
        "Opnieuw gestart met een nieuwer bericht van het LMS ({event_id}).",
    ),
    "h_grade_added": ("The grade arrived: {grade}.", "Het cijfer kwam binnen: {grade}."),
    "h_started": ("Delivery attempt {attempt} started.", "Afleverpoging {attempt} gestart."),
    "h_lms": ("Details read from the LMS.", "Gegevens gelezen uit het LMS."),
    "h_lms_time": (
        "The LMS's own completion time is used: {at} (the event said {event}).",
        "De afrondingstijd van het LMS zelf wordt gebruikt: {at} (het bericht zei {event}).",
    ),
    "h_person": ("The person was found in Coachview.", "De persoon is gevonden in Coachview."),
    "h_course": ("The course was found in Coachview.", "De cursus is gevonden in Coachview."),
    "h_resolved": (
        "Person, course and enrolment were found in Coachview.",
        "Persoon, cursus en inschrijving zijn gevonden in Coachview.",
    ),
    "h_written": ("Written to Coachview's {step}:", "Geschreven in Coachview ({step}):"),
    "h_step": ("Step done: {step}.", "Stap gedaan: {step}."),
    "h_result_link": (
        "Sent through Coachview's result link.",
        "Verstuurd via de resultaatkoppeling van Coachview.",
    ),
    "h_would_write": (
        "Trial run: would write to Coachview's {step}:",
        "Proefdraaien: zou schrijven in Coachview ({step}):",
    ),
    "h_would_skip": (
        "Trial run: nothing to write to Coachview's {step}.",
        "Proefdraaien: niets te schrijven in Coachview ({step}).",
    ),
    "h_shadowed": (
        "Trial run finished: nothing was written (approval date would be {approval_date}).",
        "Proefdraaien klaar: niets geschreven (goedkeuringsdatum zou {approval_date} zijn).",
    ),
    "h_unresolved": (
        "Coachview cannot place it yet: {error}. Next try: {next_attempt}.",
        "Coachview kan het nog niet plaatsen: {error}. Volgende poging: {next_attempt}.",
    ),
    "h_deferred": ("Waiting until {until}: {error}.", "Wacht tot {until}: {error}."),
    "h_stalled": (
        "The delivery stalled and was started again.",
        "De aflevering liep vast en is opnieuw gestart.",
    ),
    "h_daily_retry": ("Daily retry number {retry}.", "Dagelijkse nieuwe poging {retry}."),
    "h_operator_retry": ("Retried by {by}.", "Opnieuw geprobeerd door {by}."),
    "h_given_up": ("Given up: {error}.", "Opgegeven: {error}."),
    "h_given_up_by": ("Given up by {by}: {reason}", "Opgegeven door {by}: {reason}"),
    "h_delivered": (
        "Delivered: Coachview holds the completion.",
        "Afgeleverd: Coachview heeft de afronding.",
    ),
    "h_failed": ("Failed: {error}.", "Mislukt: {error}."),
    "h_other": ("{what}", "{what}"),
    "note_result_kept_existing": (
        "Coachview already had the result {existing}; it was kept (the LMS said {new}).",
        "Coachview had al het resultaat {existing}; dat is behouden (het LMS gaf {new}).",
    ),
    "note_later_event_ignored": (
        "A later event was ignored (grade {new}); {kept} stays.",
        "Een later bericht is genegeerd (cijfer {new}); {kept} blijft.",
    ),
    # Budget, one figure as `gradesync status` and doctor give it
    "budget_figure": (
        BUDGET_FIGURE,
        "nog {left} verzoeken boven de reserve van {reserve} (daglimiet {limit})",
    ),
    "budget_sent": (
        "{sent} requests sent since {since}",
        "{sent} verzoeken verstuurd sinds {since}",
    ),
    "budget_by_headers": ("counted by Coachview", "geteld door Coachview"),
    "budget_by_local": ("counted by gradesync", "geteld door gradesync"),
    "shadow_attention": (
        "Trial-run records Coachview could not place are counted here too: fix them before "
        "delivery starts.",
        "Records uit het proefdraaien die Coachview niet kon plaatsen staan hier ook: herstel "
        "ze voordat het afleveren begint.",
    ),
}


LABELS |= RECONCILE_LABELS


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


def translator(lang: Lang) -> Callable[..., str]:
    """Label by key, its ``{placeholders}`` filled from ``values``; an unknown key (a new error
    code, say) is shown as it is."""
    index = LANGS.index(lang)

    def t(key: str, **values: object) -> str:
        if key not in LABELS:
            return key
        text = LABELS[key][index]
        return text.format(**values) if values else text

    return t
