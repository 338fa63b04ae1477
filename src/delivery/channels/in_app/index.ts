/** The in-app inbox channel: the adapter, the inbox store and the in-process hub the SSE stream listens to. */
export { InAppAdapter, userHash, verifyUserHash } from './adapter.js';
export { InboxHub, insertInboxMessage, listInbox, markInboxRead, mergedIds, type InboxItem, type InboxPage, type NewInboxMessage } from './inbox.js';
