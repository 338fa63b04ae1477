/** SMS over a Twilio-style HTTP API: sending, status and inbound callbacks, opt-out keywords, signatures. */
export { TwilioSmsAdapter, smsText } from './adapter.js';
export { twilioSignature, verifyTwilioSignature } from './signature.js';
export { keywordOf, OPT_OUT_KEYWORDS, OPT_IN_KEYWORDS, HELP_KEYWORDS, type Keyword } from './keywords.js';
