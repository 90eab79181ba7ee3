// The geofence command line from source (tsx), run without blocking this process: a gateway
// the test hosts in-process keeps serving while the command runs.
import { spawn } from 'node:child_process'
import { once } from 'node:events'

export interface CliResult { status: number | null, stdout: string, stderr: string }

export async function runCli (...args: string[]): Promise<CliResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => { stdout += String(c) })
  child.stderr.on('data', (c: Buffer) => { stderr += String(c) })
  const [status] = await once(child, 'close') as [number | null]
  return { status, stdout, stderr }
}
