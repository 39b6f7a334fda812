# A minimal image of the gateway and the echo server, as `npm start` runs them.
# Untested here: the development machine has no Docker engine (see README "Containers").
#   docker build -t realtime-web .
#   docker run --rm -p 8080:8080 -p 1883:1883 -e RTW_JWT_SECRET=change-me realtime-web

# Build: the TypeScript and the browser bundle, with the dev dependencies.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY patches ./patches
RUN npm ci
COPY . .
RUN npm run build

# Run: production dependencies only, as the unprivileged "node" user.
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    RTW_HOST=0.0.0.0
WORKDIR /app
COPY package.json package-lock.json ./
COPY patches ./patches
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY --from=build /app/web-client/dist ./web-client/dist
COPY web-client/demo ./web-client/demo
COPY web-client/dashboard ./web-client/dashboard
COPY web-client/pages ./web-client/pages
COPY ecosystem.config.js openapi.yaml ./
RUN mkdir -p .pm2 && chown node:node .pm2
USER node
EXPOSE 8080 1883
# The same launcher as `npm start`: config checked first, a drain on SIGTERM (docker stop).
CMD ["node", "dist/gateway/cli/start.js"]
