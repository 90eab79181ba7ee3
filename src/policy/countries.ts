// ISO 3166 codes are a geographic vocabulary, owned by geo/countries.ts (geo must not import
// policy). Policy code and config validation name them from here too.
export { COUNTRY_CODES, countryCodeProblem } from '../geo/countries.js'
