// app.js — logs in once when the mini program starts. The pages wait for
// app.ready before calling the server; the client logs in again by itself
// when the server says the session expired (401).
const { client } = require('./utils/api.js');

App({
  globalData: {
    openid: '',
  },

  onLaunch() {
    // wx.login -> code -> POST /api/v1/login -> our session token. The
    // server trades the code for the openid (jscode2session); the
    // session_key never reaches the mini program.
    this.ready = client.login().then((session) => {
      this.globalData.openid = session.openid;
      return session;
    });
    this.ready.catch((e) => {
      wx.showModal({ title: 'Could not log in', content: e.message, showCancel: false });
    });
  },
});
