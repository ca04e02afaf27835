#!/usr/bin/env python3
"""Compares our trimmed Envoy API protos with upstream's, field by field.

Input: two FileDescriptorSets in protoc's text format (protoc --decode=...FileDescriptorSet),
which avoids needing the Python protobuf runtime. Every message, enum and service declared in
our files must exist upstream under the same full name, in the same file, with the same field
numbers, names, json names, types, labels and oneof groupings, the same enum values and the
same RPC methods. Upstream fields we left out are listed with --show-omitted.

Fields deprecated upstream are not marked [deprecated = true] here on purpose (the generated
accessors would warn wherever the proxy honours a legacy field); they are listed with
--show-deprecated so that each can be checked for a "Deprecated upstream" comment.

Exit status: 0 when no mismatch was found, 1 otherwise.
"""
import argparse
import re
import sys

_KEY = re.compile(r'(\[[\w.]+\]|\w+)\s*:?\s*')
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"\s*')
_SCALAR = re.compile(r'[^\s{}]+')


def parse_text_format(text):
    """Parses protobuf text format into nested dicts of lists: {key: [value, ...]}.

    Scalars stay strings (string escapes are not decoded); that is enough to compare names,
    numbers and enums.
    """
    pos = 0
    stack = [{}]
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        if text[pos] == '}':
            stack.pop()
            pos += 1
            continue
        m = _KEY.match(text, pos)
        if not m:
            raise ValueError('cannot parse at %d: %r' % (pos, text[pos:pos + 40]))
        key = m.group(1)
        pos = m.end()
        if text[pos] == '{':
            child = {}
            stack[-1].setdefault(key, []).append(child)
            stack.append(child)
            pos += 1
            continue
        if text[pos] == '"':
            parts = []
            while pos < len(text) and text[pos] == '"':
                s = _STRING.match(text, pos)
                parts.append(s.group(1))
                pos = s.end()
            value = ''.join(parts)
        else:
            s = _SCALAR.match(text, pos)
            value = s.group(0)
            pos = s.end()
        stack[-1].setdefault(key, []).append(value)
    return stack[0]


def one(d, key, default=None):
    v = d.get(key)
    return v[0] if v else default


class Index:
    """Full name -> (kind, file name, descriptor dict) for messages, enums and services."""

    def __init__(self, fds):
        self.items = {}
        self.files = {}
        for f in fds.get('file', []):
            fname = one(f, 'name')
            self.files[fname] = f
            pkg = one(f, 'package', '')
            for m in f.get('message_type', []):
                self._add_message(fname, pkg, m)
            for e in f.get('enum_type', []):
                self.items[pkg + '.' + one(e, 'name')] = ('enum', fname, e)
            for s in f.get('service', []):
                self.items[pkg + '.' + one(s, 'name')] = ('service', fname, s)

    def _add_message(self, fname, scope, m):
        full = scope + '.' + one(m, 'name')
        self.items[full] = ('message', fname, m)
        for n in m.get('nested_type', []):
            self._add_message(fname, full, n)
        for e in m.get('enum_type', []):
            self.items[full + '.' + one(e, 'name')] = ('enum', fname, e)

    def declared_in(self, fname):
        return sorted(k for k, v in self.items.items() if v[1] == fname)


def is_deprecated(field):
    opts = one(field, 'options', {})
    return one(opts, 'deprecated') == 'true'


def field_sig(msg, field):
    oneofs = msg.get('oneof_decl', [])
    idx = one(field, 'oneof_index')
    oneof = None
    if idx is not None and not one(field, 'proto3_optional') == 'true':
        oneof = one(oneofs[int(idx)], 'name')
    return {
        'name': one(field, 'name'),
        'json_name': one(field, 'json_name'),
        'label': one(field, 'label'),
        'type': one(field, 'type'),
        'type_name': one(field, 'type_name'),
        'oneof': oneof,
        'proto3_optional': one(field, 'proto3_optional') == 'true',
    }


def compare(ours, upstream, our_files):
    problems = []
    omitted = []
    deprecated = []
    checked = {'message': 0, 'enum': 0, 'service': 0, 'field': 0, 'enum_value': 0, 'method': 0}
    for fname in our_files:
        if fname not in upstream.files:
            problems.append('%s: no upstream file with this path' % fname)
        ours_pkg = one(ours.files[fname], 'package')
        up_pkg = one(upstream.files.get(fname, {}), 'package')
        if up_pkg is not None and ours_pkg != up_pkg:
            problems.append('%s: package %s, upstream %s' % (fname, ours_pkg, up_pkg))
        for full in upstream.declared_in(fname):
            if full not in ours.items:
                omitted.append('%s (%s)' % (full, upstream.items[full][0]))
        for full in ours.declared_in(fname):
            kind, _, ours_d = ours.items[full]
            if full not in upstream.items:
                problems.append('%s: %s %s does not exist upstream' % (fname, kind, full))
                continue
            up_kind, up_file, up_d = upstream.items[full]
            checked[kind] += 1
            if up_kind != kind:
                problems.append('%s: is a %s here, a %s upstream' % (full, kind, up_kind))
                continue
            if up_file != fname:
                problems.append('%s: declared in %s, upstream in %s' % (full, fname, up_file))
            if kind == 'message':
                up_fields = {one(f, 'number'): f for f in up_d.get('field', [])}
                our_numbers = set()
                for f in ours_d.get('field', []):
                    num = one(f, 'number')
                    our_numbers.add(num)
                    checked['field'] += 1
                    if num not in up_fields:
                        problems.append('%s: field %s = %s not upstream' %
                                        (full, one(f, 'name'), num))
                        continue
                    a, b = field_sig(ours_d, f), field_sig(up_d, up_fields[num])
                    for k in a:
                        if a[k] != b[k]:
                            problems.append('%s.%s (= %s): %s is %r here, %r upstream' %
                                            (full, a['name'], num, k, a[k], b[k]))
                    if is_deprecated(up_fields[num]):
                        deprecated.append('%s.%s = %s' % (full, a['name'], num))
                for num, f in sorted(up_fields.items(), key=lambda kv: int(kv[0])):
                    if num not in our_numbers:
                        omitted.append('%s.%s = %s%s' % (full, one(f, 'name'), num,
                                                          ' (deprecated)' if is_deprecated(f)
                                                          else ''))
            elif kind == 'enum':
                up_values = {one(v, 'name'): one(v, 'number') for v in up_d.get('value', [])}
                for v in ours_d.get('value', []):
                    checked['enum_value'] += 1
                    name, num = one(v, 'name'), one(v, 'number')
                    if up_values.get(name) != num:
                        problems.append('%s.%s = %s: upstream has %s' %
                                        (full, name, num, up_values.get(name)))
                ours_names = {one(v, 'name') for v in ours_d.get('value', [])}
                for name, num in up_values.items():
                    if name not in ours_names:
                        omitted.append('%s.%s = %s (enum value)' % (full, name, num))
            elif kind == 'service':
                up_methods = {one(m, 'name'): m for m in up_d.get('method', [])}
                for m in ours_d.get('method', []):
                    checked['method'] += 1
                    name = one(m, 'name')
                    if name not in up_methods:
                        problems.append('%s/%s: no such upstream method' % (full, name))
                        continue
                    for k in ('input_type', 'output_type', 'client_streaming',
                              'server_streaming'):
                        if one(m, k) != one(up_methods[name], k):
                            problems.append('%s/%s: %s is %r here, %r upstream' %
                                            (full, name, k, one(m, k),
                                             one(up_methods[name], k)))
                ours_names = {one(m, 'name') for m in ours_d.get('method', [])}
                for name in up_methods:
                    if name not in ours_names:
                        omitted.append('%s/%s (method)' % (full, name))
    return problems, omitted, deprecated, checked


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('ours', help='text-format FileDescriptorSet of our protos')
    ap.add_argument('upstream', help='text-format FileDescriptorSet of upstream protos')
    ap.add_argument('--files', nargs='+', required=True, help='our .proto paths to check')
    ap.add_argument('--show-omitted', action='store_true',
                    help='list upstream declarations, fields, values and methods we left out')
    ap.add_argument('--show-deprecated', action='store_true',
                    help='list the fields we keep that are deprecated upstream')
    args = ap.parse_args()
    ours = Index(parse_text_format(open(args.ours).read()))
    upstream = Index(parse_text_format(open(args.upstream).read()))
    problems, omitted, deprecated, checked = compare(ours, upstream, args.files)
    if args.show_omitted:
        for o in omitted:
            print('omitted: ' + o)
    if args.show_deprecated:
        for d in deprecated:
            print('deprecated upstream: ' + d)
    for p in problems:
        print('MISMATCH: ' + p)
    print('checked %d files: %s; %d kept fields are deprecated upstream; '
          '%d upstream declarations/fields/values/methods omitted; %d mismatches' %
          (len(args.files), ', '.join('%d %ss' % (v, k) for k, v in checked.items()),
           len(deprecated), len(omitted), len(problems)))
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
