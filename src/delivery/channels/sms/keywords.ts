/**
 * Inbound SMS keywords (CTIA / carrier conventions, as Twilio's Advanced Opt-Out uses them). The
 * whole message, trimmed and case-folded, must be the keyword: "stop" opts out, "please stop
 * by later" does not.
 */
export const OPT_OUT_KEYWORDS: ReadonlySet<string> = new Set(['STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'OPTOUT', 'REVOKE']);
export const OPT_IN_KEYWORDS: ReadonlySet<string> = new Set(['START', 'UNSTOP', 'YES']);
export const HELP_KEYWORDS: ReadonlySet<string> = new Set(['HELP', 'INFO']);

export type Keyword = 'opt_out' | 'opt_in' | 'help' | null;

export function keywordOf(body: string): Keyword {
  const k = body.trim().replace(/[.!]+$/, '').toUpperCase();
  if (OPT_OUT_KEYWORDS.has(k)) return 'opt_out';
  if (OPT_IN_KEYWORDS.has(k)) return 'opt_in';
  if (HELP_KEYWORDS.has(k)) return 'help';
  return null;
}
