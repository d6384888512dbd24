# The gradesync application image: api, worker, beat, flower and the simulator all run from it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md celeryconfig.py flowerconfig.py ./
COPY gradesync ./gradesync
COPY coachview_sim ./coachview_sim
COPY workers ./workers
COPY producers ./producers
COPY console ./console
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 10001 gradesync

# Never run as root.
USER gradesync
EXPOSE 8000 8100 5555
CMD ["gradesync", "--help"]
