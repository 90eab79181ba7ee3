# llm-geofence: built with the dev toolchain, shipped with production dependencies only, run as
# a non-root user on a read-only root filesystem (it writes nothing but stdout).
#   docker build -t llm-geofence .
#   docker run --read-only -p 8080:8080 -p 9090:9090 \
#     -v "$PWD/config:/app/config:ro" -v "$PWD/geoip-data:/app/geoip-data:ro" llm-geofence
# Node 24, an LTS line maintained until April 2028 (Node 20's ended on 2026-04-30), on Debian 13
# (trixie): bookworm's regular security support ended on 2026-06-10. Both stages on one image.
FROM node:24-trixie-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm ci && npm prune --omit=dev

FROM node:24-trixie-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json LICENSE ./
COPY config ./config
COPY geoip-data ./geoip-data
# The policy and the databases are mounted here (a ConfigMap, geoipupdate's volume): hot reload
# picks up replacements.
VOLUME ["/app/config", "/app/geoip-data"]
USER node
# 8080: the proxy. 9090: admin (health, readiness, metrics).
EXPOSE 8080 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9090/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["serve", "--config", "config/example.yaml"]
