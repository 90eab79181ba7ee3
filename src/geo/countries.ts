// ISO 3166-1 alpha-2 country codes (the 249 officially assigned, ISO 3166 Maintenance Agency,
// as of 2026-11), plus XK (Kosovo): user-assigned in ISO terms, but MaxMind and most
// geolocation databases use it, so a policy must be able to name it.

const ASSIGNED = `
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ
BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ
DE DJ DK DM DO DZ
EC EE EG EH ER ES ET
FI FJ FK FM FO FR
GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY
HK HM HN HR HT HU
ID IE IL IM IN IO IQ IR IS IT
JE JM JO JP
KE KG KH KI KM KN KP KR KW KY KZ
LA LB LC LI LK LR LS LT LU LV LY
MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ
NA NC NE NF NG NI NL NO NP NR NU NZ
OM
PA PE PF PG PH PK PL PM PN PR PS PT PW PY
QA
RE RO RS RU RW
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ
TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ
UA UG UM US UY UZ
VA VC VE VG VI VN VU
WF WS
YE YT
ZA ZM ZW
`

export const COUNTRY_CODES: ReadonlySet<string> = new Set([...ASSIGNED.trim().split(/\s+/), 'XK'])

/** Codes people write that are not ISO 3166-1 alpha-2 country codes, and what they meant. */
const HINTS: Readonly<Record<string, string>> = {
  UK: 'UK is not an ISO 3166-1 code; the United Kingdom is GB',
  EL: 'EL is the EU\'s own code for Greece; ISO 3166-1 (and every geolocation database) uses GR',
  EU: 'EU is not a country (in MaxMind data it is the continent Europe); list the member states, or use a group',
  AN: 'AN (Netherlands Antilles) was withdrawn in 2010; use BQ, CW or SX',
  YU: 'YU (Yugoslavia) was withdrawn; use RS, ME, or the successor state you mean',
  CS: 'CS (Serbia and Montenegro) was withdrawn in 2006; use RS or ME',
  A1: 'A1 (anonymous proxy) is a deprecated MaxMind pseudo-country, not a location',
  A2: 'A2 (satellite provider) is a deprecated MaxMind pseudo-country, not a location',
  O1: 'O1 (other country) is a deprecated MaxMind pseudo-country, not a location',
}

/** Why `code` is not a usable country code, or null when it is one. */
export function countryCodeProblem (code: string): string | null {
  if (COUNTRY_CODES.has(code)) return null
  const hint = HINTS[code.toUpperCase()]
  if (hint !== undefined) return `"${code}" is not a country code: ${hint}`
  if (code !== code.toUpperCase() && COUNTRY_CODES.has(code.toUpperCase())) {
    return `"${code}" must be written in upper case: ${code.toUpperCase()}`
  }
  return `"${code}" is not an ISO 3166-1 alpha-2 country code`
}
