# The pipeline's image for compose.yaml: every stage runs from it as `lc run STAGE`.
FROM python:3.11-slim
WORKDIR /app
COPY . .
# editable: schemas/ and migrations/ are read from the source tree
RUN pip install --no-cache-dir -e .
ENV LC_HOME=/var/lib/lc
CMD ["lc", "--help"]
