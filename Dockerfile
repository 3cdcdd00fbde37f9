FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends gettext && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml constraints.txt ./
RUN pip install --no-cache-dir -c constraints.txt -e . 
COPY . .
RUN DEBUG=true python manage.py compilemessages --ignore=.venv -v 0 \
 && DEBUG=true SECRET_KEY=build-only python manage.py collectstatic --noinput -v 0
RUN useradd --system --home /app app && chown -R app /app
USER app
EXPOSE 8000 8001
# Pages and the API. The checkout's event streams run the same image as an ASGI server (docker-compose.yml,
# service `events`): gunicorn config.asgi:application --worker-class uvicorn_worker.UvicornWorker.
CMD ["gunicorn", "-c", "config/gunicorn_conf.py", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
