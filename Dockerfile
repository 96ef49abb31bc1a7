# syntax=docker/dockerfile:1
# speke-proxy container image: a build stage compiles TypeScript and prunes dev dependencies,
# a runtime stage runs dist/main.js as the unprivileged `node` user with /app/data as a volume.
#
#   docker build -t speke-proxy .
#   docker run --rm -p 8080:8080 -e KMS_URL=https://kms.pallycon.com speke-proxy
#
# The major version of Node is pinned (24, the current LTS, bookworm slim; CI tests the suite on Node 24). For reproducible builds pin the digest too:
#   docker build --build-arg NODE_IMAGE=node:24-bookworm-slim@sha256:<digest> .
ARG NODE_IMAGE=node:24-bookworm-slim

# ---------------------------------------------------------------- build
FROM ${NODE_IMAGE} AS build
WORKDIR /app

# Dependencies first, so the layer is reused while only src/ changes.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

COPY tsconfig.json ./
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

# ---------------------------------------------------------------- runtime
FROM ${NODE_IMAGE} AS runtime

ENV NODE_ENV=production \
    PORT=8080 \
    HOST=0.0.0.0 \
    DATA_DIR=/app/data

WORKDIR /app

# Code and dependencies stay owned by root (read-only for the process); only /app/data is writable by `node`.
# package.json is needed at run time: its "type": "module" makes dist/*.js ES modules.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY openapi.yaml ./openapi.yaml
# The operator console's static files (served at /admin/ when ADMIN_TOKEN is set).
COPY console ./console
RUN mkdir -p /app/data \
 && chown node:node /app/data \
 && chmod 0700 /app/data

USER node

# Generated local-KMS secret, audit HMAC key and audit files. A fresh named volume inherits node:node ownership.
VOLUME /app/data

EXPOSE 8080

# Slim images have no curl or wget: Node's own fetch asks the liveness endpoint.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# Exec form: node is PID 1 and receives SIGTERM directly (the proxy shuts down gracefully on it).
CMD ["node", "dist/main.js"]
