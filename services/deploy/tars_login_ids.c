/*
 * tars_login_ids: a mosquitto plugin that ties client ids to logins.
 *
 * MQTT lets a client pick its id, and mosquitto drops the older of two clients with the
 * same id (publishing its will). So any password on the robot could knock a service off
 * the bus, in a loop. mosquitto 2.0 has no setting that protects some ids and leaves the
 * others free: use_username_as_clientid gives every client of a listener its login name
 * (then two tools clients replace each other), and a dynamic-security client id binds a
 * login to an id, not an id to a login.
 *
 * Configured with the logins that own an id (tars-install writes this line):
 *
 *     plugin /usr/lib/tars/tars_login_ids.so
 *     plugin_opt_logins movement wake router llm memory ui tts stt
 *
 * At CONNECT, before the password is checked:
 *   - a login listed there may only connect with its own name as client id;
 *   - no other login may connect with one of those names;
 *   - anything else (the tools login with an id of its own) is left to the password file.
 * A refused CONNECT is answered "not authorised" and logged with the login and the id.
 *
 * Built by tars-install with: cc -shared -fPIC -O2 -o tars_login_ids.so tars_login_ids.c
 * (Debian: gcc, mosquitto-dev, libmosquitto-dev).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#define MAX_LOGINS 64
#define MAX_NAME 128

static mosquitto_plugin_id_t *plugin_id;
static char logins[MAX_LOGINS][MAX_NAME + 1];
static int login_count;

static int is_owner(const char *name)
{
	int i;
	if(name == NULL) return 0;
	for(i = 0; i < login_count; i++){
		if(strcmp(logins[i], name) == 0) return 1;
	}
	return 0;
}

static int add_logins(const char *value)
{
	const char *p = value;
	size_t len;

	while(*p){
		while(*p == ' ' || *p == ',' || *p == '\t') p++;
		if(!*p) break;
		len = strcspn(p, " ,\t");
		if(len > MAX_NAME || login_count == MAX_LOGINS){
			mosquitto_log_printf(MOSQ_LOG_ERR,
				"tars_login_ids: plugin_opt_logins: more than %d logins or a name over %d bytes",
				MAX_LOGINS, MAX_NAME);
			return MOSQ_ERR_INVAL;
		}
		memcpy(logins[login_count], p, len);
		logins[login_count][len] = '\0';
		login_count++;
		p += len;
	}
	return MOSQ_ERR_SUCCESS;
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;
	const char *id = mosquitto_client_id(ed->client);
	const char *user = ed->username;
	(void)event;
	(void)userdata;

	if(is_owner(user)){
		if(id == NULL || strcmp(id, user) != 0){
			mosquitto_log_printf(MOSQ_LOG_WARNING,
				"tars_login_ids: refused login '%s' asking for client id '%.128s': it may only be '%s'",
				user, id ? id : "", user);
			return MOSQ_ERR_AUTH;
		}
	}else if(is_owner(id)){
		mosquitto_log_printf(MOSQ_LOG_WARNING,
			"tars_login_ids: refused login '%.128s' asking for client id '%s', which belongs to login '%s'",
			user ? user : "(anonymous)", id, id);
		return MOSQ_ERR_AUTH;
	}
	return MOSQ_ERR_PLUGIN_DEFER; /* the password file decides */
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	int i;
	for(i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5) return 5;
	}
	return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
		struct mosquitto_opt *options, int option_count)
{
	int i;
	(void)userdata;

	plugin_id = identifier;
	login_count = 0;
	for(i = 0; i < option_count; i++){
		if(strcmp(options[i].key, "logins") == 0){
			if(add_logins(options[i].value) != MOSQ_ERR_SUCCESS) return MOSQ_ERR_INVAL;
		}else{
			mosquitto_log_printf(MOSQ_LOG_ERR, "tars_login_ids: unknown option plugin_opt_%s",
				options[i].key);
			return MOSQ_ERR_INVAL;
		}
	}
	if(login_count == 0){
		mosquitto_log_printf(MOSQ_LOG_ERR,
			"tars_login_ids: plugin_opt_logins is missing: no client id would be protected");
		return MOSQ_ERR_INVAL;
	}
	mosquitto_log_printf(MOSQ_LOG_INFO, "tars_login_ids: %d logins own their client ids",
		login_count);
	return mosquitto_callback_register(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, NULL);
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	(void)userdata;
	(void)options;
	(void)option_count;
	return mosquitto_callback_unregister(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
}
