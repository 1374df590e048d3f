#!/usr/bin/env bash
# Starts OpenLDAP's slapd (Debian packages slapd, ldap-utils) on ldap://127.0.0.1:${NOVA_LFS_SLAPD_PORT:-10389}
# with its own configuration (slapd -f) and a test tree under dc=nova,dc=test: users alice, bob and
# carol (disabled in the Active Directory style) with both OpenLDAP (uid, inetOrgPerson) and Active
# Directory style attributes (sAMAccountName, userAccountControl, memberOf from the memberof overlay),
# and the groupOfNames groups developers and operators. Idempotent: does nothing when it already answers.
# Prints the URL. Identity tests read it from NOVA_LFS_LDAP_URL (default ldap://127.0.0.1:10389).
set -euo pipefail
port="${NOVA_LFS_SLAPD_PORT:-10389}"
url="ldap://127.0.0.1:${port}"
base=/var/lib/nova-lfs/slapd
log=/var/log/nova-lfs/slapd.log
admin_dn='cn=admin,dc=nova,dc=test'
admin_pw='nova-ldap-admin'
answers() { ldapsearch -x -H "$url" -b dc=nova,dc=test -s base '(objectClass=*)' dn >/dev/null 2>&1; }
if answers; then echo "$url"; exit 0; fi
for _ in $(seq 1 120); do [ -x /usr/sbin/slapd ] && command -v ldapadd >/dev/null && break; sleep 1; done
[ -x /usr/sbin/slapd ] || { echo "start-slapd: /usr/sbin/slapd is missing (apt-get install slapd ldap-utils)" >&2; exit 1; }
if [ -f "$base/slapd.pid" ] && kill -0 "$(cat "$base/slapd.pid")" 2>/dev/null; then
  kill "$(cat "$base/slapd.pid")" # a slapd that does not answer: start afresh
  for _ in $(seq 1 20); do kill -0 "$(cat "$base/slapd.pid")" 2>/dev/null || break; sleep 0.25; done
fi
rm -rf "$base/data"
mkdir -p "$base/data" /var/log/nova-lfs
cat >"$base/nova-ad.schema" <<'SCHEMA'
# The few Active Directory attributes the identity tests map (sAMAccountName, userAccountControl).
attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.99999.1.1 NAME 'novaAdAccount' AUXILIARY
  MAY ( sAMAccountName $ userAccountControl ) )
SCHEMA
cat >"$base/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include $base/nova-ad.schema
pidfile $base/slapd.pid
argsfile $base/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
database mdb
maxsize 67108864
suffix "dc=nova,dc=test"
rootdn "$admin_dn"
rootpw $admin_pw
directory $base/data
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE
CONF
/usr/sbin/slapd -f "$base/slapd.conf" -h "$url/" -u root -g root >>"$log" 2>&1
for _ in $(seq 1 60); do
  if ldapsearch -x -H "$url" -D "$admin_dn" -w "$admin_pw" -b '' -s base >/dev/null 2>&1; then break; fi
  sleep 0.25
done
pw() { /usr/sbin/slappasswd -h '{SSHA}' -s "$1"; }
# one test user, with OpenLDAP and Active Directory style attributes: uid, cn, sn, userAccountControl, password
user_entry() {
  cat <<ENTRY
dn: uid=$1,ou=users,dc=nova,dc=test
objectClass: inetOrgPerson
objectClass: novaAdAccount
uid: $1
cn: $2
sn: $3
mail: $1@nova.test
sAMAccountName: $1
userAccountControl: $4
userPassword: $(pw "$5")

ENTRY
}
{
  cat <<'LDIF'
dn: dc=nova,dc=test
objectClass: dcObject
objectClass: organization
o: Nova LFS test
dc: nova

dn: ou=users,dc=nova,dc=test
objectClass: organizationalUnit
ou: users

dn: ou=groups,dc=nova,dc=test
objectClass: organizationalUnit
ou: groups

LDIF
  user_entry alice 'Alice Liddell' Liddell 512 alice-secret
  user_entry bob 'Bob Builder' Builder 512 bob-secret
  user_entry carol 'Carol Disabled' Disabled 514 carol-secret # 514: ACCOUNTDISABLE
  cat <<'LDIF'
dn: cn=developers,ou=groups,dc=nova,dc=test
objectClass: groupOfNames
cn: developers
description: People who write code
member: uid=alice,ou=users,dc=nova,dc=test
member: uid=bob,ou=users,dc=nova,dc=test

dn: cn=operators,ou=groups,dc=nova,dc=test
objectClass: groupOfNames
cn: operators
description: People who run the cloud
member: uid=bob,ou=users,dc=nova,dc=test
LDIF
} | ldapadd -x -H "$url" -D "$admin_dn" -w "$admin_pw" >>"$log" 2>&1
if answers; then echo "$url"; exit 0; fi
echo "start-slapd: slapd did not answer on $url (log: $log)" >&2
exit 1
