import { register } from 'node:module'

register('./module-log.mjs', import.meta.url)
