// Generated capability corpus for the anycast benchmark: capabilities across
// many topics and queries that paraphrase them (synonyms, other word order,
// other inflections). Deterministic for a given seed.

const TOPICS = [
  ['invoice', 'invoices', 'billing'], ['contract', 'contracts', 'legal'], ['email', 'emails', 'mail'],
  ['recipe', 'recipes', 'cooking'], ['resume', 'resumes', 'hiring'], ['tweet', 'tweets', 'social'],
  ['article', 'articles', 'news'], ['medical report', 'medical reports', 'health'], ['log file', 'log files', 'devops'],
  ['python code', 'python scripts', 'programming'], ['sql query', 'sql queries', 'database'], ['spreadsheet', 'spreadsheets', 'finance'],
  ['photo', 'photos', 'image'], ['video', 'videos', 'media'], ['podcast', 'podcasts', 'audio'],
  ['song lyrics', 'lyrics', 'music'], ['product review', 'product reviews', 'ecommerce'], ['support ticket', 'support tickets', 'helpdesk'],
  ['research paper', 'research papers', 'science'], ['patent', 'patents', 'intellectual property'], ['weather report', 'weather reports', 'weather'],
  ['stock chart', 'stock charts', 'trading'], ['bank statement', 'bank statements', 'banking'], ['tax form', 'tax forms', 'tax'],
  ['meeting transcript', 'meeting transcripts', 'meetings'], ['chat message', 'chat messages', 'messaging'], ['poem', 'poems', 'poetry'],
  ['map route', 'map routes', 'navigation'], ['flight booking', 'flight bookings', 'travel'], ['hotel listing', 'hotel listings', 'hospitality'],
  ['job posting', 'job postings', 'recruiting'], ['lesson plan', 'lesson plans', 'education'], ['exam question', 'exam questions', 'teaching'],
  ['legal case', 'legal cases', 'law'], ['insurance claim', 'insurance claims', 'insurance'], ['real estate listing', 'real estate listings', 'property'],
  ['sensor reading', 'sensor readings', 'iot'], ['network packet', 'network packets', 'security'], ['malware sample', 'malware samples', 'malware'],
  ['dna sequence', 'dna sequences', 'genomics'], ['protein structure', 'protein structures', 'biology'], ['chemical formula', 'chemical formulas', 'chemistry'],
  ['math problem', 'math problems', 'mathematics'], ['chess position', 'chess positions', 'games'], ['sports score', 'sports scores', 'sports'],
  ['satellite image', 'satellite images', 'geospatial'], ['floor plan', 'floor plans', 'architecture'], ['circuit diagram', 'circuit diagrams', 'electronics'],
  ['shipping label', 'shipping labels', 'logistics'], ['purchase order', 'purchase orders', 'procurement'], ['customer survey', 'customer surveys', 'marketing'],
  ['ad copy', 'ad copies', 'advertising'], ['press release', 'press releases', 'public relations'], ['speech', 'speeches', 'politics'],
  ['menu', 'menus', 'restaurant'], ['workout plan', 'workout plans', 'fitness'], ['diet log', 'diet logs', 'nutrition'],
  ['calendar event', 'calendar events', 'scheduling'], ['git commit', 'git commits', 'version control'], ['api spec', 'api specs', 'software'],
  ['config file', 'config files', 'infrastructure'], ['crash report', 'crash reports', 'debugging'], ['user story', 'user stories', 'agile']
]

// [verb forms used in capability texts, paraphrase verbs used in queries, output phrase]
const ACTIONS = [
  [['summarize', 'summarizes', 'summary'], ['give me a short summary of', 'summarise', 'condense'], 'a short summary'],
  [['translate', 'translates', 'translation'], ['translate', 'render in another language', 'translating'], 'a translation'],
  [['classify', 'classifies', 'classification'], ['categorize', 'classify', 'label the category of'], 'a category label'],
  [['extract entities from', 'extracts entities', 'entity extraction'], ['pull out the named entities in', 'extract the entities from', 'find entities in'], 'a list of entities'],
  [['detect anomalies in', 'anomaly detection', 'detects anomalies'], ['spot anomalies in', 'find anomalies in', 'detecting anomalous'], 'flagged anomalies'],
  [['generate', 'generates', 'generation'], ['write a new', 'create', 'generating a'], 'a generated draft'],
  [['validate', 'validates', 'validation'], ['check the validity of', 'validating', 'verify'], 'validation errors'],
  [['compare', 'compares', 'comparison'], ['compare two', 'comparing', 'diff'], 'a comparison'],
  [['search', 'searches', 'search engine'], ['search through', 'look up', 'searching'], 'matching results'],
  [['convert', 'converts', 'conversion'], ['convert the format of', 'converting', 'change the format of'], 'a converted file'],
  [['rank', 'ranks', 'ranking'], ['rank', 'order by relevance', 'ranking'], 'a ranked list'],
  [['redact personal data in', 'redacts personal data', 'redaction'], ['remove personal information from', 'redact', 'anonymize'], 'a redacted copy'],
  [['answer questions about', 'answers questions', 'question answering'], ['answer my question about', 'question answering over', 'ask questions about'], 'an answer'],
  [['tag', 'tags', 'tagging'], ['add tags to', 'tagging', 'assign keywords to'], 'keyword tags'],
  [['forecast', 'forecasts', 'forecasting'], ['predict future', 'forecasting', 'project trends of'], 'a forecast'],
  [['deduplicate', 'deduplicates', 'deduplication'], ['remove duplicate', 'deduplicating', 'find duplicate'], 'unique items']
]

function rng (seed) {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6D2B79F5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** `count` capabilities (topic x action), and `queries` paraphrasing randomly chosen ones */
export function generateCorpus ({ count = 1024, queries = 500, seed = 42 } = {}) {
  const rand = rng(seed)
  const pick = (a) => a[Math.floor(rand() * a.length)]
  const caps = []
  const pairs = []
  for (let t = 0; t < TOPICS.length; t++) for (let a = 0; a < ACTIONS.length; a++) pairs.push([t, a])
  // deterministic shuffle
  for (let i = pairs.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [pairs[i], pairs[j]] = [pairs[j], pairs[i]]
  }
  for (const [t, a] of pairs.slice(0, count)) {
    const [one, many, domain] = TOPICS[t]
    const [verbs, , out] = ACTIONS[a]
    caps.push({
      name: `${verbs[0].split(' ')[0]}-${one.replace(/ /g, '-')}`,
      description: `${cap(verbs[0])} ${many} and return ${out}. A ${domain} ${verbs[2]} service.`,
      tags: [domain, verbs[2], one],
      examples: [`${verbs[0]} this ${one}`],
      topic: t,
      action: a
    })
  }
  const qs = []
  for (let i = 0; i < queries; i++) {
    const target = Math.floor(rand() * caps.length)
    const c = caps[target]
    const [one, many, domain] = TOPICS[c.topic]
    const para = ACTIONS[c.action][1]
    const templates = [
      () => `please ${pick(para)} my ${one}`,
      () => `I need something to ${pick(para)} ${many}`,
      () => `${pick(para)} these ${many} for ${domain}`,
      () => `can you ${pick(para)} this ${one}?`,
      () => `${domain}: ${pick(para)} a ${one}`
    ]
    qs.push({ text: pick(templates)(), target })
  }
  return { capabilities: caps, queries: qs }
}

function cap (s) {
  return s[0].toUpperCase() + s.slice(1)
}
