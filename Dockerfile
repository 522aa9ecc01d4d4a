# syntax=docker/dockerfile:1
# garden-deploy image: the CLI, run by docker-compose.yml as the worker (`garden-deploy worker`),
# the Vertex/Compute emulator (`garden-deploy emulator`) and the cluster setup job.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# `npm install`, not `npm ci`: see scripts/install-tools.sh. No scripts yet: `prepare` builds, and
# the sources are not copied at this point (keeps this layer cached across source edits).
RUN npm install --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts/build-workflow-bundle.ts ./scripts/
# The workflow code bundled once here, so workers start without webpack (GARDEN_DEPLOY_WORKFLOW_BUNDLE).
RUN npm run build \
  && node --import tsx scripts/build-workflow-bundle.ts dist/workflow-bundle.js \
  && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
  GARDEN_DEPLOY_WORKFLOW_BUNDLE=/app/dist/workflow-bundle.js
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY bin ./bin
# State directory of the emulator service; a fresh named volume copies this ownership.
RUN mkdir -p /var/lib/garden-deploy && chown node:node /var/lib/garden-deploy
USER node
ENTRYPOINT ["node", "bin/garden-deploy.js"]
CMD ["--help"]
