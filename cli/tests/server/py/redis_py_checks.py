"""Ordinary redis-py checks against a server on the port given as argv[1].

Run by tests/server/redis_py.rs; prints one line per check and exits non-zero on the first
failure. redis-py is used with its defaults (in redis-py 8: RESP3 via HELLO 3), and once more
with protocol=2.
"""
import sys
import threading

import redis


def checks(port, protocol, pool_threads):
    kw = {} if protocol is None else {"protocol": protocol}
    r = redis.Redis(port=port, decode_responses=True, **kw)
    label = "default" if protocol is None else f"protocol={protocol}"
    r.flushdb()
    assert r.ping()
    assert r.set("greeting", "hello") is True
    assert r.get("greeting") == "hello"
    assert r.get("missing") is None
    assert r.mset({"a": "1", "b": "2"}) is True
    assert r.mget("a", "b", "nope") == ["1", "2", None]
    assert r.incr("counter") == 1
    assert r.incr("counter", 5) == 6
    assert r.decr("counter") == 5
    assert r.incrbyfloat("f", 1.5) == 1.5
    assert r.expire("greeting", 100) is True
    assert 95 <= r.ttl("greeting") <= 100
    assert r.set("short", "v", px=100000) is True
    assert 90000 < r.pttl("short") <= 100000
    assert r.persist("short") is True and r.ttl("short") == -1
    with r.pipeline(transaction=True) as p:
        p.set("tx1", "x").incr("txn").incr("txn").get("tx1")
        assert p.execute() == [True, 1, 2, "x"]
    with r.pipeline(transaction=False) as p:
        for i in range(100):
            p.set(f"pipe:{i}", i)
        assert all(p.execute())
    # WATCH-based optimistic locking, as redis-py's transaction() helper does it.
    def add_one(pipe):
        v = int(pipe.get("watched") or 0)
        pipe.multi()
        pipe.set("watched", v + 1)
    r.transaction(add_one, "watched")
    assert r.get("watched") == "1"
    assert r.hset("h", mapping={"f1": "v1", "f2": "v2"}) == 2
    assert r.hget("h", "f1") == "v1"
    assert r.hgetall("h") == {"f1": "v1", "f2": "v2"}
    assert r.hincrby("h", "n", 3) == 3
    assert sorted(r.hkeys("h")) == ["f1", "f2", "n"]
    try:
        r.get("h")
        raise AssertionError("GET of a hash succeeded")
    except redis.ResponseError as e:
        assert "WRONGTYPE" in str(e)
    keys = set(r.scan_iter(match="pipe:*", count=10))
    assert keys == {f"pipe:{i}" for i in range(100)}, len(keys)
    assert set(r.scan_iter(_type="hash")) == {"h"}
    info = r.info()
    assert info["redis_version"] and info["connected_clients"] >= 1 and "used_memory" in info
    assert r.info("keyspace")["db0"]["keys"] == r.dbsize()
    assert r.type("h") == "hash"
    assert r.delete("h", "a", "nope") == 2
    assert r.client_setname("py") is True and r.client_getname() == "py"
    assert r.config_get("appendfsync") == {"appendfsync": "always"}
    assert r.exists("b") == 1
    print(f"ok: ordinary checks ({label})")

    if not pool_threads:
        return
    # A pool shared by 50 threads.
    pool = redis.ConnectionPool(port=port, max_connections=50, decode_responses=True, **kw)
    errors = []

    def worker(t):
        try:
            c = redis.Redis(connection_pool=pool)
            for i in range(20):
                c.set(f"t{t}:{i}", i)
                assert c.get(f"t{t}:{i}") == str(i)
                c.incr("shared")
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert r.get("shared") == str(50 * 20)
    print(f"ok: 50-thread pool ({label})")


def main():
    port = int(sys.argv[1])
    checks(port, None, True)
    checks(port, 2, False)
    checks(port, 3, False)
    print("redis-py", redis.__version__, "passed")


if __name__ == "__main__":
    main()
