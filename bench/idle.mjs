// Node itself, for reference beside the proxies' memory: prints a line, then idles.
process.stdout.write('0\n')
setInterval(() => {}, 1 << 30)
