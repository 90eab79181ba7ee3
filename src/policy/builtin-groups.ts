// Built-in jurisdiction groups: facts with their source and the date of the copy they were
// taken from. Provider lists drift within months: refresh them from the sources named, and
// keep the date true. `geofence groups` prints this table.
//
// Notes that shaped the data:
// - Providers publish ALLOW lists; "unsupported" is their complement over ISO 3166-1 (every
//   code not listed, dependent territories included), plus the regions a provider excludes
//   inside a supported country. Those regions are ISO 3166-2 subdivisions, which only a City
//   database can see; each such group has a "-countries" twin without them.
// - US EAR treats Hong Kong as China since 2020-12-23 (FR Doc. 2020-28101): HK is listed
//   wherever CN is in an ear-* group. Macau (MO) stays separate.
// - XK (Kosovo) is user-assigned in ISO but used by MaxMind; it is part of the universe the
//   complements are taken over.

import { COUNTRY_CODES } from './countries.js'

export interface BuiltinGroup {
  source: string
  /** The date of the copy of the source this list was taken from (YYYY-MM or YYYY-MM-DD). */
  date: string
  note?: string
  /** ISO 3166-1 alpha-2 codes and ISO 3166-2 subdivision codes, space separated. */
  members: string
}

const SUPPORTED: Readonly<Record<string, BuiltinGroup>> = {
  'anthropic-supported': {
    source: "platform.claude.com/docs/en/api/supported-regions",
    date: '2026',
    note: "later copies of the page add CF, CD, ER, ET",
    members: `
    AD AE AG AL AM AO AR AT AU AZ BA BB BD BE BF BG BH BI BJ BN BO BR BS BT BW BZ CA CG CH CI CL CM
    CO CR CV CY CZ DE DJ DK DM DO DZ EC EE EG ES FI FJ FM FR GA GB GD GE GH GM GN GQ GR GT GW GY HN
    HR HT HU ID IE IL IN IQ IS IT JM JO JP KE KG KH KI KM KN KR KW KZ LA LB LC LI LK LR LS LT LU LV
    MA MC MD ME MG MH MK MN MR MT MU MV MW MX MY MZ NA NE NG NL NO NP NR NZ OM PA PE PG PH PK PL PS
    PT PW PY QA RO RS RW SA SB SC SE SG SI SK SL SM SN SR ST SV SZ TD TG TH TJ TL TM TN TO TR TT TV
    TW TZ UA UG US UY UZ VA VC VN VU WS ZA ZM ZW
  `,
  },
  'openai-supported': {
    source: "OpenAI Help Center, \"Supported countries and territories\"",
    date: '2025-08',
    note: "Ukraine is listed \"with certain exceptions\": openai-unsupported adds the OFAC-sanctioned regions",
    members: `
    AD AE AF AG AL AM AO AR AT AU AZ BA BB BD BE BF BG BH BI BJ BN BO BR BS BT BW BZ CA CD CF CG CH
    CI CL CM CO CR CV CY CZ DE DJ DK DM DO DZ EC EE EG ER ES ET FI FJ FM FR GA GB GD GE GH GM GN GQ
    GR GT GW GY HN HR HT HU ID IE IL IN IQ IS IT JM JO JP KE KG KH KI KM KN KR KW KZ LA LB LC LI LK
    LR LS LT LU LV LY MA MC MD ME MG MH MK ML MM MN MR MT MU MV MW MX MY MZ NA NE NG NI NL NO NP NR
    NZ OM PA PE PG PH PK PL PS PT PW PY QA RO RS RW SA SB SC SD SE SG SI SK SL SM SN SO SR SS ST SV
    SZ TD TG TH TJ TL TM TN TO TR TT TV TW TZ UA UG US UY UZ VA VC VN VU WS YE ZA ZM ZW
  `,
  },
  'gemini-supported': {
    source: "ai.google.dev/gemini-api/docs/available-regions (\"last updated 2025-11-19\")",
    date: '2025-11-19',
    note: "MC, MD, SM and VA are missing from that copy",
    members: `
    AE AG AI AL AM AO AQ AR AS AT AU AW AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BW BZ
    CA CC CD CF CG CH CI CK CL CM CO CR CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ
    FK FM FO FR GA GB GD GE GG GH GI GL GM GN GQ GR GS GT GU GW GY HM HN HR HT HU ID IE IL IM IN IO
    IQ IS IT JE JM JO JP KE KG KH KI KM KN KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA ME MG MH
    MK ML MN MP MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PG PH PK PL
    PM PN PR PS PT PW PY QA RO RS RW SA SB SC SD SE SG SH SI SK SL SN SO SR SS ST SV SZ TC TD TG TH
    TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VC VE VG VI VN VU WF WS XK YE ZA ZM ZW
  `,
  },
}

/** Regions a provider excludes inside a country it supports. */
const EXCLUDED_SUBDIVISIONS: Readonly<Record<string, string>> = {
  anthropic: 'UA-43 UA-40 UA-14 UA-09 UA-65 UA-23',
  openai: 'UA-43 UA-40 UA-14 UA-09',
  gemini: 'UA-43 UA-40 UA-14 UA-09',
}

const LISTS: Readonly<Record<string, BuiltinGroup>> = {
  'ear-d1': {
    source: "15 CFR 740 Supplement No. 1 (Country Groups), checked against eCFR; Country Group D:1 (national security)",
    date: '2026-07',
    note: "one third-party copy checked against eCFR: medium confidence; HK added as CN",
    members: `
    AM AZ BY CN GE HK IQ KG KH KP KZ LA LY MD MM MN MO NI RU TJ TM UZ VE VN YE
  `,
  },
  'ear-d4': {
    source: "15 CFR 740 Supplement No. 1 (Country Groups), checked against eCFR; Country Group D:4 (missile technology)",
    date: '2026-07',
    note: "one third-party copy checked against eCFR: medium confidence; HK added as CN",
    members: `
    AE BH BY CN EG HK IL IQ IR JO KP KW LB LY MO OM PK QA RU SA SY VE YE
  `,
  },
  'ear-d5': {
    source: "15 CFR 740 Supplement No. 1 (Country Groups), checked against eCFR; Country Group D:5 (US arms embargoed)",
    date: '2026-07',
    note: "two sources; reflects the removal of Cambodia on 2026-02-03; HK added as CN",
    members: `
    AF BY CD CF CN CU ER HK HT IQ IR KP LB LY MM NI RU SD SO SS SY VE ZW
  `,
  },
  'ear-e1': {
    source: "15 CFR 740 Supplement No. 1 (Country Groups), checked against eCFR; Country Group E:1 (terrorist supporting)",
    date: '2026-07',
    members: `
    IR KP SY
  `,
  },
  'ear-e2': {
    source: "15 CFR 740 Supplement No. 1 (Country Groups), checked against eCFR; Country Group E:2 (unilateral embargo)",
    date: '2026-07',
    members: `
    CU
  `,
  },
  'ofac-comprehensive': {
    source: "US Treasury OFAC, comprehensively sanctioned countries and regions",
    date: '2026-11',
    note: "Crimea (UA-43), Sevastopol (UA-40), Donetsk (UA-14), Luhansk (UA-09) as whole oblasts (over-blocks: conservative); Syria's program ended 2025-07-01 (EO 14312) and Syria stays in ear-e1",
    members: `
    CU IR KP UA-43 UA-40 UA-14 UA-09
  `,
  },
  'eu': {
    source: "Treaty on European Union, member states",
    date: '2026-11',
    members: `
    AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK
  `,
  },
  'eu-territories': {
    source: "TFEU art. 349 and 355: outermost regions and \u00c5land with their own ISO codes",
    date: '2026-11',
    members: `
    AX GF GP MF MQ RE YT
  `,
  },
  'eea': {
    source: "EEA Agreement: EU member states plus IS, LI, NO",
    date: '2026-11',
    members: `
    AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK IS LI NO
  `,
  },
  'five-eyes': {
    source: "UKUSA Agreement parties",
    date: '2026-11',
    members: `
    AU CA GB NZ US
  `,
  },
  'gcc': {
    source: "Gulf Cooperation Council charter members",
    date: '2026-11',
    members: `
    AE BH KW OM QA SA
  `,
  },
  'asean': {
    source: "ASEAN member states",
    date: '2026-11',
    note: "Timor-Leste joined 2025-10-26",
    members: `
    BN ID KH LA MM MY PH SG TH VN TL
  `,
  },
}

export interface ResolvedGroup {
  name: string
  source: string
  date: string
  note?: string
  members: ReadonlySet<string>
}

const SUBDIVISION = /^[A-Z]{2}-[A-Z0-9]{1,3}$/
const split = (text: string): string[] => text.trim().split(/\s+/).filter((s) => s !== '')

function build (): Map<string, ResolvedGroup> {
  const out = new Map<string, ResolvedGroup>()
  const add = (name: string, g: Omit<ResolvedGroup, 'name'>): void => { out.set(name, { name, ...g }) }
  for (const [name, g] of Object.entries(LISTS)) {
    const members = new Set(split(g.members))
    add(name, { ...g, members })
    if ([...members].some((m) => SUBDIVISION.test(m))) {
      add(`${name}-countries`, { ...g, note: `${name} without its subdivisions, for deployments without a City database`, members: new Set([...members].filter((m) => !SUBDIVISION.test(m))) })
    }
  }
  for (const [name, g] of Object.entries(SUPPORTED)) {
    const provider = name.replace(/-supported$/, '')
    const supported = new Set(split(g.members))
    const unsupportedCountries = new Set([...COUNTRY_CODES].filter((c) => !supported.has(c)))
    const excluded = split(EXCLUDED_SUBDIVISIONS[provider] ?? '')
    add(name, { ...g, members: supported })
    add(`${provider}-unsupported`, {
      source: `every ISO 3166-1 code not in ${name}, plus the regions ${provider} excludes (${excluded.join(', ')})`,
      date: g.date,
      members: new Set([...unsupportedCountries, ...excluded]),
    })
    add(`${provider}-unsupported-countries`, {
      source: `every ISO 3166-1 code not in ${name}`,
      date: g.date,
      note: `${provider}-unsupported without its subdivisions, for deployments without a City database`,
      members: unsupportedCountries,
    })
  }
  return out
}

/** Every built-in group by name; user groups may not reuse these names. */
export const BUILTIN_GROUPS: ReadonlyMap<string, ResolvedGroup> = build()

export function isSubdivisionCode (code: string): boolean {
  return SUBDIVISION.test(code)
}
