// Hooks of the admin pages: the admin API of the session, who the key is (/api/v1/me), and a reloadable resource.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { AdminApi, type Me } from "../../api/admin";
import type { Api } from "../../api/client";
import { describeError } from "../../api/client";
import { useSession } from "../../session";

export function useAdminApi(): AdminApi {
  const { api } = useSession();
  return useMemo(() => new AdminApi(api), [api]);
}

const known = new WeakMap<Api, Promise<Me>>();

/** The calling key (its role decides what the pages offer); null until known. Asked once per logged-in key. */
export function useMe(api: Api): Me | null {
  const [me, setMe] = useState<Me | null>(null);
  useEffect(() => {
    let live = true;
    let asked = known.get(api);
    if (!asked) {
      asked = new AdminApi(api).me();
      known.set(api, asked);
      asked.catch(() => known.delete(api));
    }
    asked.then((value) => live && setMe(value)).catch(() => {});
    return () => {
      live = false;
    };
  }, [api]);
  return me;
}

export type Resource<T> = { data: T | null; error: string | null; reload: () => void };

/** ``load()`` now, again on ``reload()`` and whenever ``deps`` change; the latest answer wins. */
export function useResource<T>(load: () => Promise<T>, deps: unknown[]): Resource<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  const latest = useRef(0);
  // ``deps`` name what ``load`` reads, as for useCallback.
  const stableLoad = useCallback(load, deps);
  useEffect(() => {
    const call = ++latest.current;
    stableLoad()
      .then((value) => {
        if (call !== latest.current) return;
        setData(value);
        setError(null);
      })
      .catch((exc: unknown) => call === latest.current && setError(describeError(exc)));
  }, [stableLoad, tick]);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  return { data, error, reload };
}

/** The time now, updated every ``everyMs`` (for "in 4 s" that counts down). */
export function useNow(everyMs = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(timer);
  }, [everyMs]);
  return now;
}

/** ``value``, passed on at most once every ``everyMs`` (the latest one): a busy tenant feed then makes a page
 * read its lists again once a second, not once per event. */
export function useThrottled<T>(value: T, everyMs = 1000): T {
  const [shown, setShown] = useState(value);
  const last = useRef(0);
  useEffect(() => {
    const wait = last.current + everyMs - Date.now();
    const timer = setTimeout(
      () => {
        last.current = Date.now();
        setShown(value);
      },
      Math.max(0, wait),
    );
    return () => clearTimeout(timer);
  }, [value, everyMs]);
  return shown;
}
