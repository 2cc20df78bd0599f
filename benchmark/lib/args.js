'use strict'
// Command-line flags of `npm run bench`.

const USAGE = `usage: node benchmark/bench.js [--quick] [--json FILE] [--only SECTION,...]
  --quick        smoke run: every row with tiny counts (well under a minute)
  --json FILE    also write the raw results as JSON to FILE
  --only LIST    run only these sections: footprint,require,latency,flood,idle,loss,hostnet,routing`

function parseArgs(argv) {
  const args = { quick: false, json: null, only: null }
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]
    if (flag === '--quick') args.quick = true
    else if (flag === '--json') args.json = required(argv[++i], flag)
    else if (flag === '--only') args.only = required(argv[++i], flag).split(',')
    else if (flag === '--help' || flag === '-h') return { help: USAGE }
    else throw new Error(`unknown argument ${flag}\n${USAGE}`)
  }
  return args
}

function required(value, flag) {
  if (value === undefined || value.startsWith('--')) throw new Error(`${flag} needs a value\n${USAGE}`)
  return value
}

module.exports = { parseArgs }
