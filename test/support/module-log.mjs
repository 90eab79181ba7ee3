// A module resolve hook for test/footprint.test.ts: appends every module URL a process resolves
// to the file named by GEOFENCE_MODULE_LOG. Registered with `node --import` (module-log-register.mjs).
import { appendFileSync } from 'node:fs'

export async function resolve (specifier, context, next) {
  const resolved = await next(specifier, context)
  if (process.env.GEOFENCE_MODULE_LOG) appendFileSync(process.env.GEOFENCE_MODULE_LOG, `${resolved.url}\n`)
  return resolved
}
