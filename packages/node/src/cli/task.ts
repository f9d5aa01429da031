export const TASK_HELP = 'Usage: aistack task submit|status|list|cancel|watch [options]'
export const EVENTS_HELP = 'Usage: aistack events [--home DIR] [--json]'

export async function taskCommand (_args: string[]): Promise<number> {
  console.log(TASK_HELP)
  return 0
}

export async function eventsCommand (_args: string[]): Promise<number> {
  console.log(EVENTS_HELP)
  return 0
}
