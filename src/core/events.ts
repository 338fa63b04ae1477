/**
 * A typed lifecycle event bus with `noun:verb` names, used for metrics, audit, triggers and tests.
 * Listeners run synchronously after the fact they announce has been committed; a throwing
 * listener is reported through `listener:error` and never undoes the fact.
 */
export type Listener<T> = (payload: T) => void;

export class EventBus<M extends { [K in keyof M]: unknown }> {
  private listeners = new Map<keyof M, Set<Listener<never>>>();

  on<K extends keyof M>(name: K, fn: Listener<M[K]>): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(fn as Listener<never>);
    return () => set?.delete(fn as Listener<never>);
  }

  emit<K extends keyof M>(name: K, payload: M[K]): void {
    const set = this.listeners.get(name);
    if (!set) return;
    for (const fn of set) {
      try {
        (fn as Listener<M[K]>)(payload);
      } catch (err) {
        if (name !== ('listener:error' as K)) this.emit('listener:error' as K, { event: name, error: err } as M[K]);
      }
    }
  }
}
