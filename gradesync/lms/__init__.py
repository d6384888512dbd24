"""The LMS adapters: each LMS's API client and wire formats the worker and the poller need
(Moodle web services, ILIAS SOAP and its LPData, aNewSpring's REST API and webhook fields), the
enrichment step that asks them for what an event lacks, and the ILIAS poller. Producers (which
turn payloads into events) and workers (which deliver them) both build on these; these import
only the core."""
